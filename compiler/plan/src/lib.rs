//! The execution plan format: types, cache keys, JSON Schema, diff and graph rendering.
//!
//! The plan is the only contract between the compiler and the runtime. The runtime depends on
//! this crate alone (never on the syntax or type-checking crates), and a plan file alone is
//! enough to run a pipeline, locally or remotely. That is why this crate depends on no other
//! `mlp` crate and why its JSON form is versioned, strict and documented in `spec/plan.md`
//! with a JSON Schema in `spec/plan.schema.json`.
//!
//! Module map:
//! - this file: the types, reading and writing JSON, [`PlanError`];
//! - [`key`]: canonical JSON and cache keys;
//! - [`check`]: [`validate`], the structural checks a reader runs before trusting a plan;
//! - [`value`]: the conventions for values inside `params` (quantities, secrets, configs);
//! - [`mod@diff`]: Terraform-style plan diffs with the reason for every change;
//! - [`graph`]: Graphviz DOT and Mermaid renderings.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod check;
pub mod diff;
pub mod graph;
pub mod key;
pub mod value;

pub use check::validate;
pub use diff::{
    diff, NodeChange, NodeDiff, PipelineChange, PipelineDiff, PipelineStatus, PlanDiff, Reason,
};
pub use graph::{to_dot, to_mermaid};
pub use key::{canonical_json, compute_cache_keys, hash_source, key_material};

/// The value of [`Plan::format`]: lets a reader tell a plan from any other JSON file.
pub const PLAN_FORMAT: &str = "mlp-plan";
/// The plan format version this build reads and writes. Any change to the format bumps it
/// (see "Versioning" in `spec/plan.md`).
pub const PLAN_VERSION: u32 = 1;

/// The JSON Schema of the plan format (`spec/plan.schema.json`), for editors, CI and
/// runtimes written in other languages.
pub fn schema() -> &'static str {
    include_str!("../../../spec/plan.schema.json")
}

/// A compiled plan: every pipeline of one source file, lowered to a DAG of nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Always [`PLAN_FORMAT`].
    pub format: String,
    /// Always [`PLAN_VERSION`] for plans this build writes.
    pub version: u32,
    /// The compiler that wrote the plan, e.g. `"mlp 0.1.0"`. Informational only.
    pub compiler: String,
    pub source: Source,
    pub pipelines: Vec<PipelinePlan>,
}

/// Where the plan came from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The source path as given to the compiler (not canonicalized, so plans stay portable).
    pub path: String,
    /// blake3 hex of the source bytes.
    pub hash: String,
}

/// One pipeline: its parameters (with the values used) and its nodes in topological order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelinePlan {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub doc: Option<String>,
    pub params: Vec<ParamValue>,
    /// Topologically ordered: every input refers to an earlier node.
    pub nodes: Vec<Node>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub schedule: Option<Value>,
}

/// A pipeline parameter and the value this plan was compiled with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParamValue {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub value: Value,
    /// True when the value came from the command line or a config rather than the default.
    pub overridden: bool,
}

/// One step of a pipeline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Stable id, `pipeline.binding` (e.g. `trace_embeddings.cube`), with `/suffix` for an
    /// anonymous nested op (`trace_embeddings.index/encode`). Not part of the cache key.
    pub id: String,
    pub kind: NodeKind,
    /// Qualified op name, e.g. `seismic.segy`, `io.output`.
    pub op: String,
    /// Bumped by the op's implementer when its results change; part of the cache key.
    pub op_version: u32,
    /// Constant arguments; see `spec/plan.md` for the value conventions.
    pub params: BTreeMap<String, Value>,
    /// Edges from other nodes, in argument order.
    pub inputs: Vec<Input>,
    /// The inferred output type, printed, e.g. `Volume[il, xl, 462]`.
    #[serde(rename = "type")]
    pub ty: String,
    pub device: Device,
    pub resources: Resources,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub span: Option<SourceSpan>,
    /// blake3 hex, filled by [`compute_cache_keys`].
    pub cache_key: String,
}

impl Node {
    /// A node with no params, no inputs, device `any`, default resources, op version 1 and an
    /// empty cache key: the starting point for lowering, which fills in the rest.
    pub fn new(
        id: impl Into<String>,
        kind: NodeKind,
        op: impl Into<String>,
        ty: impl Into<String>,
    ) -> Node {
        Node {
            id: id.into(),
            kind,
            op: op.into(),
            op_version: 1,
            params: BTreeMap::new(),
            inputs: Vec::new(),
            ty: ty.into(),
            device: Device::Any,
            resources: Resources::default(),
            span: None,
            cache_key: String::new(),
        }
    }

    /// The binding part of the id: `cube` for `trace_embeddings.cube` in pipeline
    /// `trace_embeddings`; the whole id when it does not start with `pipeline.`.
    pub fn binding<'a>(&'a self, pipeline: &str) -> &'a str {
        self.id
            .strip_prefix(pipeline)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(&self.id)
    }
}

/// What a node does to the world: `op` nodes are pure, `output` and `deploy` have effects.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Op,
    Output,
    Deploy,
}

/// Where a node must (or may) run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Gpu,
    Any,
}

/// An edge: argument `name` of this node takes the output of node `from`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Argument name; `items[0]` for the elements of a list argument.
    pub name: String,
    /// The id of an earlier node of the same pipeline.
    pub from: String,
}

impl Input {
    pub fn new(name: impl Into<String>, from: impl Into<String>) -> Input {
        Input {
            name: name.into(),
            from: from.into(),
        }
    }
}

/// Resource requests for a node. Absent fields mean "no particular request".
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores (fractions allowed, as in Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<f64>,
    /// Memory in bytes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<u64>,
    /// Whole GPUs; omitted when zero.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub gpu: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a node was written: 1-based line and column, byte offsets `start..end`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpan {
    pub line: u32,
    pub column: u32,
    pub start: u32,
    pub end: u32,
}

impl Plan {
    /// An empty plan for `source_path`, hashing `source_bytes`.
    pub fn new(
        compiler: impl Into<String>,
        source_path: impl Into<String>,
        source_bytes: &[u8],
    ) -> Plan {
        Plan {
            format: PLAN_FORMAT.to_string(),
            version: PLAN_VERSION,
            compiler: compiler.into(),
            source: Source {
                path: source_path.into(),
                hash: hash_source(source_bytes),
            },
            pipelines: Vec::new(),
        }
    }

    /// The pipeline called `name`, if any.
    pub fn pipeline(&self, name: &str) -> Option<&PipelinePlan> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    /// Fills every node's cache key in every pipeline (see [`compute_cache_keys`]).
    pub fn compute_cache_keys(&mut self) {
        self.pipelines.iter_mut().for_each(compute_cache_keys);
    }

    /// Reads a plan. Format and version are checked before the structure, so that a plan
    /// from a newer compiler says "version 2 unsupported" rather than "unknown field".
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PlanError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        let Value::Object(obj) = &value else {
            return Err(PlanError::NotAPlan(format!(
                "expected a JSON object, found {}",
                json_kind(&value)
            )));
        };
        match obj.get("format") {
            Some(Value::String(f)) if f == PLAN_FORMAT => {}
            Some(other) => {
                return Err(PlanError::NotAPlan(format!(
                    "\"format\" is {other}, expected \"{PLAN_FORMAT}\""
                )))
            }
            None => {
                return Err(PlanError::NotAPlan(format!(
                    "no \"format\": \"{PLAN_FORMAT}\" field"
                )))
            }
        }
        match obj.get("version") {
            Some(Value::Number(n)) if n.as_u64() == Some(u64::from(PLAN_VERSION)) => {}
            Some(Value::Number(n)) => return Err(PlanError::UnsupportedVersion(n.to_string())),
            Some(other) => {
                return Err(PlanError::NotAPlan(format!(
                    "\"version\" is {}, expected a number",
                    json_kind(other)
                )))
            }
            None => return Err(PlanError::NotAPlan("no \"version\" field".to_string())),
        }
        // Parse the text again rather than `from_value`, so structural errors keep their
        // line and column.
        serde_json::from_str(text).map_err(|e| PlanError::Invalid {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })
    }

    /// Pretty JSON (2-space indent) with a trailing newline. Deterministic: the same plan
    /// always gives the same bytes (params are sorted by name; field order is fixed).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a plan always serializes");
        s.push('\n');
        s
    }
}

/// Why a plan could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanError {
    /// The text is not valid JSON.
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid JSON, but not an mlp plan (no or wrong `format`).
    NotAPlan(String),
    /// A plan of a version this build does not read (the found version, as written).
    UnsupportedVersion(String),
    /// A plan of the right version whose structure does not match the format.
    Invalid {
        line: usize,
        column: usize,
        message: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Json {
                line,
                column,
                message,
            } => write!(f, "not valid JSON at line {line}, column {column}: {message}"),
            PlanError::NotAPlan(why) => write!(f, "not an mlp plan: {why}"),
            PlanError::UnsupportedVersion(v) => write!(
                f,
                "plan format version {v} is unsupported; this build reads version {PLAN_VERSION} \
                 (recompile the source with this compiler, or use a matching runtime)"
            ),
            PlanError::Invalid {
                line,
                column,
                message,
            } => write!(
                f,
                "invalid mlp plan (version {PLAN_VERSION}) at line {line}, column {column}: {message}"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// serde_json appends " at line L column C" to its messages; we report those separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
