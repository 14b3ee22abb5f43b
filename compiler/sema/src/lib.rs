//! Semantic analysis of mlp: name resolution against the standard library prelude, type
//! inference with units and dimensioned domain types, shape inference, and evaluation of
//! each pipeline into typed nodes (the HIR) that lowering turns into a plan.
//!
//! See spec/types.md for the type system this implements.

mod check;
mod eval;
pub mod hir;
mod intrinsics;
pub mod prelude;
pub mod types;
mod unify;

pub use check::{check, prelude_problems, Checked};
