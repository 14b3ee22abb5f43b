//! Embedders (see spec/rag.md).
