//! Canonical JSON and cache keys.
//!
//! A node's cache key names its result: the same op, op version, constant params and input
//! results always give the same key, so a runtime may reuse a cached result whose key matches.
//! What the node is *called* (its id), what the checker inferred (its type), and where or how
//! it runs (device, resources, span) are deliberately left out: renaming a binding, reformatting
//! the file or moving a node to the GPU must not throw away cached work.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::{Node, PipelinePlan};

/// Serializes `v` with object keys sorted (by their UTF-8 bytes) at every depth and no
/// whitespace. Numbers and strings are written as serde_json writes them, so the text is a
/// function of the value alone, whatever order the keys were inserted in.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("a string serializes"));
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).expect("a scalar serializes")),
    }
}

/// blake3 hex of the source bytes, for [`crate::Source::hash`].
pub fn hash_source(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The value whose canonical JSON is hashed into `node`'s cache key:
/// `{"op", "op_version", "params", "inputs": [[name, input_key], ...]}`, where quantities
/// in params lose their display-only `text`.
///
/// `input_key` looks up the cache key of an input node by id; an input it cannot resolve
/// contributes an empty key (such a plan fails [`crate::validate`]). Public so that tools can
/// show *what* a key covers ("cache keys explained before running").
pub fn key_material<'a>(node: &Node, input_key: impl Fn(&str) -> Option<&'a str>) -> Value {
    let inputs: Vec<Value> = node
        .inputs
        .iter()
        .map(|i| json!([i.name, input_key(&i.from).unwrap_or("")]))
        .collect();
    let params: serde_json::Map<String, Value> = node
        .params
        .iter()
        .map(|(k, v)| (k.clone(), without_quantity_text(v)))
        .collect();
    json!({
        "op": node.op,
        "op_version": node.op_version,
        "params": params,
        "inputs": inputs,
    })
}

/// A copy of `v` without the `text` of quantities: `text` is the source spelling, kept for
/// display, and `4 ms` and `0.004 s` must hash alike (spec/types.md, "Quantities").
fn without_quantity_text(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let is_quantity = m.contains_key("quantity");
            Value::Object(
                m.iter()
                    .filter(|(k, _)| !(is_quantity && k.as_str() == "text"))
                    .map(|(k, v)| (k.clone(), without_quantity_text(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(without_quantity_text).collect()),
        scalar => scalar.clone(),
    }
}

/// The cache key of `node` given its inputs' keys: blake3 hex of the canonical JSON of
/// [`key_material`].
pub fn node_cache_key<'a>(node: &Node, input_key: impl Fn(&str) -> Option<&'a str>) -> String {
    let material = canonical_json(&key_material(node, input_key));
    blake3::hash(material.as_bytes()).to_hex().to_string()
}

/// Fills `cache_key` of every node, in order. Nodes must be topologically ordered (inputs
/// refer to earlier nodes), so one pass suffices and a change anywhere reaches every
/// downstream key. An input naming an unknown or later node hashes as an empty key;
/// [`crate::validate`] reports it.
pub fn compute_cache_keys(p: &mut PipelinePlan) {
    let mut keys: HashMap<String, String> = HashMap::with_capacity(p.nodes.len());
    for node in &mut p.nodes {
        let key = node_cache_key(node, |id| keys.get(id).map(String::as_str));
        node.cache_key = key.clone();
        // With duplicate ids (also a validation error) the first node wins, so that a later
        // duplicate cannot change the keys its predecessors were hashed against.
        keys.entry(node.id.clone()).or_insert(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}}"#)
                .unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn canonical_json_escapes_strings() {
        assert_eq!(canonical_json(&json!({"k\"": "a\nb"})), r#"{"k\"":"a\nb"}"#);
    }
}
