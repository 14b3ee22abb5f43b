//! Node-level comparison: the reasons one node differs from its old self.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::Reason;
use crate::value::key_segment;
use crate::{Node, PipelinePlan};

/// What comparing one node needs to know about both pipelines.
pub(super) struct Ctx<'a, 'n> {
    pub(super) old_by_id: &'a HashMap<&'n str, &'n Node>,
    pub(super) new_by_id: &'a HashMap<&'n str, &'n Node>,
    /// old id → new id
    pub(super) renames: &'a HashMap<&'n str, &'n str>,
    /// new id → old id
    pub(super) renamed_from: &'a HashMap<&'n str, &'n str>,
}

/// Old ids that vanished paired with new ids that appeared, when exactly one of each carries
/// the same (non-empty) cache key: the same computation under another name.
pub(super) fn find_renames<'n>(
    old: &'n PipelinePlan,
    new: &'n PipelinePlan,
    old_by_id: &HashMap<&str, &Node>,
    new_by_id: &HashMap<&str, &Node>,
) -> HashMap<&'n str, &'n str> {
    let by_key = |nodes: &'n [Node], other: &HashMap<&str, &Node>| {
        let mut m: HashMap<&'n str, Vec<&'n str>> = HashMap::new();
        for n in nodes.iter().filter(|n| !other.contains_key(n.id.as_str())) {
            if !n.cache_key.is_empty() {
                m.entry(n.cache_key.as_str())
                    .or_default()
                    .push(n.id.as_str());
            }
        }
        m
    };
    let gone = by_key(&old.nodes, new_by_id);
    let appeared = by_key(&new.nodes, old_by_id);
    gone.iter()
        .filter_map(
            |(key, olds)| match (olds.as_slice(), appeared.get(key).map(Vec::as_slice)) {
                ([o], Some([n])) => Some((*o, *n)),
                _ => None,
            },
        )
        .collect()
}

pub(super) fn node_reasons(o: &Node, n: &Node, ctx: &Ctx) -> Vec<Reason> {
    let mut r = Vec::new();
    if o.kind != n.kind {
        r.push(Reason::KindChanged {
            old: o.kind,
            new: n.kind,
        });
    }
    if o.op != n.op {
        r.push(Reason::OpChanged {
            old: o.op.clone(),
            new: n.op.clone(),
        });
    }
    if o.op_version != n.op_version {
        r.push(Reason::OpVersionChanged {
            old: o.op_version,
            new: n.op_version,
        });
    }
    let keys: Vec<&String> = o
        .params
        .keys()
        .chain(n.params.keys().filter(|k| !o.params.contains_key(*k)))
        .collect();
    for k in keys {
        let path = key_segment("", k);
        match (o.params.get(k), n.params.get(k)) {
            (Some(a), Some(b)) => diff_values(&path, a, b, &mut r),
            (Some(a), None) => r.push(Reason::ParamRemoved {
                path,
                old: a.clone(),
            }),
            (None, Some(b)) => r.push(Reason::ParamAdded {
                path,
                new: b.clone(),
            }),
            (None, None) => {}
        }
    }
    input_reasons(o, n, ctx, &mut r);
    if o.ty != n.ty {
        r.push(Reason::TypeChanged {
            old: o.ty.clone(),
            new: n.ty.clone(),
        });
    }
    if o.device != n.device {
        r.push(Reason::DeviceChanged {
            old: o.device,
            new: n.device,
        });
    }
    if o.resources != n.resources {
        r.push(Reason::ResourcesChanged {
            old: o.resources.clone(),
            new: n.resources.clone(),
        });
    }
    if o.cache_key != n.cache_key && !r.iter().any(Reason::affects_cache_key) {
        r.extend(upstream_reasons(n, ctx));
        if !r.iter().any(Reason::affects_cache_key) {
            r.push(Reason::CacheKeyChanged {
                old: o.cache_key.clone(),
                new: n.cache_key.clone(),
            });
        }
    }
    r
}

/// Compares inputs by argument name, seeing old sources through renames so that an edge to
/// a renamed node is not a change.
fn input_reasons(o: &Node, n: &Node, ctx: &Ctx, r: &mut Vec<Reason>) {
    let through =
        |from: &str| -> String { ctx.renames.get(from).copied().unwrap_or(from).to_string() };
    let old_inputs: Vec<(String, String)> = o
        .inputs
        .iter()
        .map(|i| (i.name.clone(), through(&i.from)))
        .collect();
    let before = r.len();
    for (name, from) in &old_inputs {
        match n.inputs.iter().find(|i| &i.name == name) {
            None => r.push(Reason::InputRemoved {
                name: name.clone(),
                from: from.clone(),
            }),
            Some(i) if &i.from != from => r.push(Reason::InputRewired {
                name: name.clone(),
                old: from.clone(),
                new: i.from.clone(),
            }),
            Some(_) => {}
        }
    }
    for i in &n.inputs {
        if !old_inputs.iter().any(|(name, _)| name == &i.name) {
            r.push(Reason::InputAdded {
                name: i.name.clone(),
                from: i.from.clone(),
            });
        }
    }
    let old_names: Vec<String> = old_inputs.into_iter().map(|(name, _)| name).collect();
    let new_names: Vec<String> = n.inputs.iter().map(|i| i.name.clone()).collect();
    if r.len() == before && old_names != new_names {
        r.push(Reason::InputsReordered {
            old: old_names,
            new: new_names,
        });
    }
}

/// The inputs of `n` whose node's cache key differs from the old plan's (one reason per
/// input node, in argument order). An input node new to the plan counts as changed.
fn upstream_reasons(n: &Node, ctx: &Ctx) -> Vec<Reason> {
    let mut seen = HashSet::new();
    n.inputs
        .iter()
        .filter(|i| seen.insert(i.from.as_str()))
        .filter(|i| {
            let old_id = ctx
                .renamed_from
                .get(i.from.as_str())
                .copied()
                .unwrap_or(&i.from);
            let old_key = ctx.old_by_id.get(old_id).map(|o| o.cache_key.as_str());
            let new_key = ctx
                .new_by_id
                .get(i.from.as_str())
                .map(|n| n.cache_key.as_str());
            old_key.is_none() || old_key != new_key
        })
        .map(|i| Reason::UpstreamChanged {
            name: i.name.clone(),
            from: i.from.clone(),
        })
        .collect()
}

/// Recursive param comparison producing JSON paths. Quantities and secrets are compared as
/// wholes (`4 ms → 8 ms`, not `dt.value` and `dt.text`); configs recurse into their args
/// when the function is the same.
fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<Reason>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y))
            if is_record_like(x) && is_record_like(y) && x.get("fn") == y.get("fn") =>
        {
            let keys: Vec<&String> = x
                .keys()
                .chain(y.keys().filter(|k| !x.contains_key(*k)))
                .collect();
            for k in keys {
                let p = key_segment(path, k);
                match (x.get(k), y.get(k)) {
                    (Some(a), Some(b)) => diff_values(&p, a, b, out),
                    (Some(a), None) => out.push(Reason::ParamRemoved {
                        path: p,
                        old: a.clone(),
                    }),
                    (None, Some(b)) => out.push(Reason::ParamAdded {
                        path: p,
                        new: b.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(a), Some(b)) => diff_values(&p, a, b, out),
                    (Some(a), None) => out.push(Reason::ParamRemoved {
                        path: p,
                        old: a.clone(),
                    }),
                    (None, Some(b)) => out.push(Reason::ParamAdded {
                        path: p,
                        new: b.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        _ => out.push(Reason::ParamChanged {
            path: path.to_string(),
            old: a.clone(),
            new: b.clone(),
        }),
    }
}

/// Records and configs are compared field by field; quantities, secrets and input
/// placeholders are atoms.
fn is_record_like(m: &serde_json::Map<String, Value>) -> bool {
    !m.contains_key("quantity") && !m.contains_key("secret") && !m.contains_key("input")
}
