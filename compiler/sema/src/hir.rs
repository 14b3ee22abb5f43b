//! The checker's output: each pipeline evaluated into typed nodes whose arguments are either
//! constants (JSON, as the plan stores them) or references to other nodes. Lowering turns
//! this into a plan without knowing anything about syntax or types.

use crate::prelude::Device;
use mlp_diagnostics::Span;

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// A compile-time constant, already in the plan's JSON conventions (spec/plan.md).
    Const(serde_json::Value),
    /// The output of another node, by id.
    Node(String),
    /// A list or record with at least one node inside.
    List(Vec<Val>),
    Record(Vec<(String, Val)>),
    /// The value of an expression that already had an error.
    Unknown,
}

impl Val {
    pub fn is_const(&self) -> bool {
        matches!(self, Val::Const(_))
    }
    pub fn as_const(&self) -> Option<&serde_json::Value> {
        match self {
            Val::Const(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        self.as_const().and_then(|v| v.as_i64())
    }
    pub fn as_str(&self) -> Option<&str> {
        self.as_const().and_then(|v| v.as_str())
    }
    /// Folds lists and records of constants into one constant.
    pub fn list(items: Vec<Val>) -> Val {
        if items.iter().any(|v| matches!(v, Val::Unknown)) {
            return Val::Unknown;
        }
        if items.iter().all(Val::is_const) {
            Val::Const(serde_json::Value::Array(
                items
                    .into_iter()
                    .map(|v| v.as_const().cloned().unwrap())
                    .collect(),
            ))
        } else {
            Val::List(items)
        }
    }
    pub fn record(fields: Vec<(String, Val)>) -> Val {
        if fields.iter().any(|(_, v)| matches!(v, Val::Unknown)) {
            return Val::Unknown;
        }
        if fields.iter().all(|(_, v)| v.is_const()) {
            let mut m = serde_json::Map::new();
            for (k, v) in fields {
                m.insert(k, v.as_const().cloned().unwrap());
            }
            Val::Const(serde_json::Value::Object(m))
        } else {
            Val::Record(fields)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Op,
    Output,
    Deploy,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HNode {
    pub id: String,
    /// The `let` binding this node is (or is nested in).
    pub binding: Option<String>,
    pub kind: NodeKind,
    pub op: String,
    pub op_version: u32,
    /// Every parameter of the op, defaults included, in declaration order.
    pub args: Vec<(String, Val)>,
    /// The inferred output type, printed.
    pub ty: String,
    pub device: Device,
    pub memory: Option<u64>,
    pub gpu: u32,
    pub cpu: Option<f64>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckedParam {
    pub name: String,
    pub ty: String,
    /// `None` when the parameter has no default and no override.
    pub value: Option<serde_json::Value>,
    pub overridden: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckedPipeline {
    pub name: String,
    pub doc: Option<String>,
    pub params: Vec<CheckedParam>,
    /// In topological order: every node's inputs come before it.
    pub nodes: Vec<HNode>,
    pub schedule: Option<serde_json::Value>,
    pub span: Span,
}
