//! GPU backend (being written).
