//! The execution plan format: types, cache keys, JSON Schema, diff and graph rendering. The only contract between compiler and runtime.
