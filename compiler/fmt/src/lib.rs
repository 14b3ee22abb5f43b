//! The canonical formatter for .mlp files: idempotent, keeps every comment.
