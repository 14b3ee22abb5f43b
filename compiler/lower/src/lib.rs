//! Lowers the typed HIR of a pipeline into an execution plan.
