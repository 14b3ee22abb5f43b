//! Plan diffs, Terraform-plan style: what a recompile will add, change and remove, and why.
//!
//! Nodes are matched by id. A changed node carries the reasons it changed, down to the JSON
//! path of a param (`encoder[2].args.units`); a node whose own content is unchanged but whose
//! cache key moved names the upstream input whose key changed, so a user can see *why* a
//! step will rerun before anything runs. A node whose id disappeared while a new id appeared
//! with the same cache key is reported as a rename, and its dependents' edges are followed
//! through the rename, since the runtime will reuse its cached result.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::{Device, Node, NodeKind, ParamValue, PipelinePlan, Plan, Resources};

mod nodes;
mod render;

use nodes::{find_renames, node_reasons, Ctx};

/// The difference between two plans. Serializes for `--format json`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PlanDiff {
    /// Pipelines of the new plan in order, then pipelines only the old plan had.
    pub pipelines: Vec<PipelineDiff>,
    pub to_add: usize,
    pub to_change: usize,
    pub to_remove: usize,
    pub unchanged: usize,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PipelineStatus {
    Added,
    Removed,
    Changed,
    Unchanged,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PipelineDiff {
    pub name: String,
    pub status: PipelineStatus,
    /// Changes to the pipeline's params and schedule.
    pub changes: Vec<PipelineChange>,
    /// Added, removed and changed nodes (unchanged nodes are only counted).
    pub nodes: Vec<NodeDiff>,
    pub unchanged: usize,
}

/// A change to a pipeline itself rather than to one of its nodes.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PipelineChange {
    ParamAdded {
        param: ParamValue,
    },
    ParamRemoved {
        param: ParamValue,
    },
    ParamChanged {
        old: ParamValue,
        new: ParamValue,
    },
    ScheduleChanged {
        old: Option<Value>,
        new: Option<Value>,
    },
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeChange {
    Added,
    Removed,
    Changed,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct NodeDiff {
    pub id: String,
    pub op: String,
    pub change: NodeChange,
    /// Why a changed node changed; empty for added and removed nodes.
    pub reasons: Vec<Reason>,
    /// Whether the cache key differs, i.e. whether the node will rerun rather than reuse a
    /// cached result. Always true for added nodes, false for removed ones.
    pub cache_key_changed: bool,
}

/// One reason a node changed.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The node had another id and the same cache key.
    Renamed {
        from: String,
    },
    KindChanged {
        old: NodeKind,
        new: NodeKind,
    },
    OpChanged {
        old: String,
        new: String,
    },
    OpVersionChanged {
        old: u32,
        new: u32,
    },
    ParamAdded {
        path: String,
        new: Value,
    },
    ParamRemoved {
        path: String,
        old: Value,
    },
    ParamChanged {
        path: String,
        old: Value,
        new: Value,
    },
    InputAdded {
        name: String,
        from: String,
    },
    InputRemoved {
        name: String,
        from: String,
    },
    InputRewired {
        name: String,
        old: String,
        new: String,
    },
    InputsReordered {
        old: Vec<String>,
        new: Vec<String>,
    },
    TypeChanged {
        old: String,
        new: String,
    },
    DeviceChanged {
        old: Device,
        new: Device,
    },
    ResourcesChanged {
        old: Resources,
        new: Resources,
    },
    /// Nothing about the node itself changed, but the cache key of input node `from`
    /// (argument `name`) did, so the node's key changed with it.
    UpstreamChanged {
        name: String,
        from: String,
    },
    /// The key changed and nothing recorded explains it (a hand-edited plan, or keys from a
    /// different hashing scheme).
    CacheKeyChanged {
        old: String,
        new: String,
    },
}

impl Reason {
    /// Whether this reason is part of the cache key (and so makes the node rerun).
    pub fn affects_cache_key(&self) -> bool {
        !matches!(
            self,
            Reason::Renamed { .. }
                | Reason::KindChanged { .. }
                | Reason::TypeChanged { .. }
                | Reason::DeviceChanged { .. }
                | Reason::ResourcesChanged { .. }
        )
    }
}

impl PlanDiff {
    /// True when the plans are equivalent for execution: no node or pipeline-level change.
    pub fn is_empty(&self) -> bool {
        self.pipelines
            .iter()
            .all(|p| p.status == PipelineStatus::Unchanged)
    }

    /// Terraform-plan style text; see `spec/plan.md` for the format.
    pub fn render_text(&self) -> String {
        render::render_text(self)
    }
}

/// Compares two plans, pipeline by pipeline (matched by name) and node by node (by id).
pub fn diff(old: &Plan, new: &Plan) -> PlanDiff {
    let mut pipelines = Vec::new();
    for np in &new.pipelines {
        pipelines.push(match old.pipeline(&np.name) {
            Some(op) => diff_pipeline(op, np),
            None => whole_pipeline(np, PipelineStatus::Added),
        });
    }
    for op in &old.pipelines {
        if new.pipeline(&op.name).is_none() {
            pipelines.push(whole_pipeline(op, PipelineStatus::Removed));
        }
    }
    let count = |c: NodeChange| -> usize {
        pipelines
            .iter()
            .map(|p| p.nodes.iter().filter(|n| n.change == c).count())
            .sum()
    };
    PlanDiff {
        to_add: count(NodeChange::Added),
        to_change: count(NodeChange::Changed),
        to_remove: count(NodeChange::Removed),
        unchanged: pipelines.iter().map(|p| p.unchanged).sum(),
        pipelines,
    }
}

fn whole_pipeline(p: &PipelinePlan, status: PipelineStatus) -> PipelineDiff {
    let change = if status == PipelineStatus::Added {
        NodeChange::Added
    } else {
        NodeChange::Removed
    };
    PipelineDiff {
        name: p.name.clone(),
        status,
        changes: Vec::new(),
        nodes: p
            .nodes
            .iter()
            .map(|n| NodeDiff {
                id: n.id.clone(),
                op: n.op.clone(),
                change,
                reasons: Vec::new(),
                cache_key_changed: change == NodeChange::Added,
            })
            .collect(),
        unchanged: 0,
    }
}

fn diff_pipeline(old: &PipelinePlan, new: &PipelinePlan) -> PipelineDiff {
    let changes = pipeline_changes(old, new);
    let old_by_id: HashMap<&str, &Node> = old.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let new_by_id: HashMap<&str, &Node> = new.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let renames = find_renames(old, new, &old_by_id, &new_by_id);
    let renamed_from: HashMap<&str, &str> = renames.iter().map(|(o, n)| (*n, *o)).collect();
    let ctx = Ctx {
        old_by_id: &old_by_id,
        new_by_id: &new_by_id,
        renames: &renames,
        renamed_from: &renamed_from,
    };

    let mut nodes = Vec::new();
    let mut unchanged = 0;
    for n in &new.nodes {
        let (o, renamed) = match (
            old_by_id.get(n.id.as_str()),
            renamed_from.get(n.id.as_str()),
        ) {
            (Some(o), _) => (*o, None),
            (None, Some(from)) => (old_by_id[from], Some(*from)),
            (None, None) => {
                nodes.push(NodeDiff {
                    id: n.id.clone(),
                    op: n.op.clone(),
                    change: NodeChange::Added,
                    reasons: Vec::new(),
                    cache_key_changed: true,
                });
                continue;
            }
        };
        let mut reasons: Vec<Reason> = renamed
            .map(|from| Reason::Renamed {
                from: from.to_string(),
            })
            .into_iter()
            .collect();
        reasons.extend(node_reasons(o, n, &ctx));
        if reasons.is_empty() {
            unchanged += 1;
        } else {
            nodes.push(NodeDiff {
                id: n.id.clone(),
                op: n.op.clone(),
                change: NodeChange::Changed,
                reasons,
                cache_key_changed: o.cache_key != n.cache_key,
            });
        }
    }
    for o in &old.nodes {
        if !new_by_id.contains_key(o.id.as_str()) && !renames.contains_key(o.id.as_str()) {
            nodes.push(NodeDiff {
                id: o.id.clone(),
                op: o.op.clone(),
                change: NodeChange::Removed,
                reasons: Vec::new(),
                cache_key_changed: false,
            });
        }
    }
    let status = if changes.is_empty() && nodes.is_empty() {
        PipelineStatus::Unchanged
    } else {
        PipelineStatus::Changed
    };
    PipelineDiff {
        name: new.name.clone(),
        status,
        changes,
        nodes,
        unchanged,
    }
}

fn pipeline_changes(old: &PipelinePlan, new: &PipelinePlan) -> Vec<PipelineChange> {
    let mut out = Vec::new();
    for o in &old.params {
        match new.params.iter().find(|p| p.name == o.name) {
            None => out.push(PipelineChange::ParamRemoved { param: o.clone() }),
            Some(n) if n != o => out.push(PipelineChange::ParamChanged {
                old: o.clone(),
                new: n.clone(),
            }),
            Some(_) => {}
        }
    }
    for n in &new.params {
        if !old.params.iter().any(|o| o.name == n.name) {
            out.push(PipelineChange::ParamAdded { param: n.clone() });
        }
    }
    if old.schedule != new.schedule {
        out.push(PipelineChange::ScheduleChanged {
            old: old.schedule.clone(),
            new: new.schedule.clone(),
        });
    }
    out
}
