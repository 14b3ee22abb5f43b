//! The salsa database: parse, resolve/check and lower as incremental queries over file inputs.
