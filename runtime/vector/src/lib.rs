//! Vector store and retrieval metrics (see spec/rag.md).
