//! Structural validation: what a runtime checks before it trusts a plan file.
//!
//! Deserialization already guarantees the shape; this module checks the invariants that the
//! shape cannot express: ids are unique and well-formed, edges point backwards (topological
//! order), and every stored cache key is the one its content hashes to, so that a hand-edited
//! or truncated plan cannot make the runtime reuse the wrong cached result.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::key::node_cache_key;
use crate::value::{classify, key_segment, ValueKind};
use crate::{Plan, PLAN_FORMAT, PLAN_VERSION};

/// Checks a plan; on failure returns every problem found, each naming the pipeline and node.
pub fn validate(plan: &Plan) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if plan.format != PLAN_FORMAT {
        errors.push(format!(
            "format is \"{}\", expected \"{PLAN_FORMAT}\"",
            plan.format
        ));
    }
    if plan.version != PLAN_VERSION {
        errors.push(format!(
            "version {} is unsupported; this build reads version {PLAN_VERSION}",
            plan.version
        ));
    }
    if !is_hex64(&plan.source.hash) {
        errors.push(format!(
            "source.hash `{}` is not a 64-digit lowercase blake3 hex",
            plan.source.hash
        ));
    }

    let mut pipeline_names = HashSet::new();
    for p in &plan.pipelines {
        let pl = &p.name;
        if !is_ident(pl) {
            errors.push(format!("pipeline `{pl}`: name is not an identifier"));
        }
        if !pipeline_names.insert(pl.as_str()) {
            errors.push(format!("pipeline `{pl}` is defined twice"));
        }
        let mut param_names = HashSet::new();
        for param in &p.params {
            if !param_names.insert(param.name.as_str()) {
                errors.push(format!("pipeline `{pl}`: duplicate param `{}`", param.name));
            }
            check_value(&param.name, &param.value, &[], &mut |path, msg| {
                errors.push(format!("pipeline `{pl}`: param `{path}`: {msg}"))
            });
        }

        if let Some(schedule) = &p.schedule {
            check_value("schedule", schedule, &[], &mut |path, msg| {
                errors.push(format!("pipeline `{pl}`: `{path}`: {msg}"))
            });
        }

        // Position of the first node with each id, to tell "later node" from "unknown node".
        let mut position: HashMap<&str, usize> = HashMap::new();
        for (i, node) in p.nodes.iter().enumerate() {
            if let Some(first) = position.get(node.id.as_str()) {
                errors.push(format!(
                    "pipeline `{pl}`: duplicate node id `{}` (nodes #{first} and #{i})",
                    node.id
                ));
            } else {
                position.insert(&node.id, i);
            }
        }

        let mut keys: HashMap<&str, &str> = HashMap::new();
        for (i, node) in p.nodes.iter().enumerate() {
            let id = &node.id;
            if !is_node_id(pl, id) {
                errors.push(format!(
                    "pipeline `{pl}`: node id `{id}` must be `{pl}.<binding>` with an optional \
                     `/suffix`, using letters, digits and `_ . [ ] # : -`"
                ));
            }
            if !is_hex64(&node.cache_key) {
                errors.push(format!(
                    "node `{id}`: cache key `{}` is not a 64-digit lowercase hex (were cache keys computed?)",
                    node.cache_key
                ));
            }
            let input_names: Vec<&str> = node.inputs.iter().map(|i| i.name.as_str()).collect();
            for (name, v) in &node.params {
                check_value(&key_segment("", name), v, &input_names, &mut |path, msg| {
                    errors.push(format!(
                        "pipeline `{pl}`: node `{id}`: param `{path}`: {msg}"
                    ))
                });
            }
            let mut edges_ok = true;
            let mut arg_names = HashSet::new();
            for input in &node.inputs {
                if !arg_names.insert(input.name.as_str()) {
                    errors.push(format!(
                        "node `{id}`: input `{}` is given twice",
                        input.name
                    ));
                }
                match position.get(input.from.as_str()) {
                    Some(&j) if j < i => {}
                    Some(&j) if j == i => {
                        edges_ok = false;
                        errors.push(format!(
                            "node `{id}`: input `{}` refers to the node itself",
                            input.name
                        ));
                    }
                    Some(_) => {
                        edges_ok = false;
                        errors.push(format!(
                            "node `{id}`: input `{}` refers to `{}`, which comes after it \
                             (nodes must be in topological order)",
                            input.name, input.from
                        ));
                    }
                    None => {
                        edges_ok = false;
                        errors.push(format!(
                            "node `{id}`: input `{}` refers to unknown node `{}`",
                            input.name, input.from
                        ));
                    }
                }
            }
            // Each key is checked against its inputs' *stored* keys, so a stale key is
            // reported once, at the node where it went wrong, not at every node downstream.
            if edges_ok && is_hex64(&node.cache_key) {
                let expected = node_cache_key(node, |from| keys.get(from).copied());
                if expected != node.cache_key {
                    errors.push(format!(
                        "node `{id}`: stale cache key (stored {}, content hashes to {})",
                        &node.cache_key[..12],
                        &expected[..12]
                    ));
                }
            }
            keys.entry(id.as_str()).or_insert(node.cache_key.as_str());
        }
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Walks a param value and reports every tagged object (quantity, secret, config) that does
/// not follow the conventions, with its path. The runtime reads values through
/// [`classify`], so a malformed one would otherwise fail only when its node starts.
///
/// `inputs` are the argument names of the node's edges, which `{"input": name}` placeholders
/// must refer to (none outside nodes).
fn check_value(path: &str, v: &Value, inputs: &[&str], report: &mut impl FnMut(&str, String)) {
    match classify(v) {
        Err(msg) => report(path, msg),
        Ok(ValueKind::Input(name)) if !inputs.contains(&name) => report(
            path,
            format!("placeholder refers to input `{name}`, which the node does not have"),
        ),
        Ok(ValueKind::Config { args, .. }) => {
            let base = format!("{path}.args");
            for (k, a) in args {
                check_value(&key_segment(&base, k), a, inputs, report);
            }
        }
        Ok(ValueKind::Plain(Value::Array(items))) => {
            for (i, item) in items.iter().enumerate() {
                check_value(&format!("{path}[{i}]"), item, inputs, report);
            }
        }
        Ok(ValueKind::Plain(Value::Object(fields))) => {
            for (k, f) in fields {
                check_value(&key_segment(path, k), f, inputs, report);
            }
        }
        Ok(_) => {}
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `pipeline.rest`, where `rest` is `/`-separated non-empty segments of `[A-Za-z0-9_.[]#:-]`;
/// the same grammar as the `id` pattern of the schema, plus the pipeline prefix, which keeps
/// ids unique across pipelines (graph renderings rely on it).
fn is_node_id(pipeline: &str, id: &str) -> bool {
    let Some(rest) = id.strip_prefix(pipeline).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    rest.split('/').all(|seg| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.[]#:-".contains(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_grammar() {
        assert!(is_node_id("p", "p.cube"));
        assert!(is_node_id("p", "p.index/encode"));
        assert!(is_node_id("p", "p.out[0]"));
        assert!(!is_node_id("p", "q.cube"));
        assert!(!is_node_id("p", "p."));
        assert!(!is_node_id("p", "p.a//b"));
        assert!(!is_node_id("p", "p.a b"));
        assert!(!is_node_id("p", "pcube"));
    }
}
