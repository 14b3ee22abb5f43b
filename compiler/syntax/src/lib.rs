//! Syntax of mlp: grammar (pest), AST with byte spans, and a parser that never gives up at
//! the first error. See spec/language.md for the language this implements.

pub mod ast;
mod parse;
pub mod scan;

pub use parse::{parse, parse_bytes, Parsed, MAX_EXPR_PARTS};
