//! Cache keys: stable, independent of names and placement, sensitive to everything that
//! changes a result, and propagated downstream.
mod common;

use std::collections::HashMap;

use mlp_plan::{canonical_json, compute_cache_keys, key_material, Device, Node, NodeKind, Plan};
use serde_json::json;

fn keys(plan: &Plan, pipeline: usize) -> HashMap<String, String> {
    plan.pipelines[pipeline]
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.cache_key.clone()))
        .collect()
}

#[test]
fn same_input_same_keys_and_keys_are_hex() {
    let a = common::sample_plan();
    let b = common::sample_plan();
    assert_eq!(keys(&a, 0), keys(&b, 0));
    for n in a.pipelines.iter().flat_map(|p| &p.nodes) {
        assert_eq!(n.cache_key.len(), 64, "{}", n.id);
        assert!(n.cache_key.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let all: std::collections::HashSet<_> = a
        .pipelines
        .iter()
        .flat_map(|p| &p.nodes)
        .map(|n| &n.cache_key)
        .collect();
    assert_eq!(all.len(), 11, "distinct nodes get distinct keys");
}

#[test]
fn key_definition_is_pinned() {
    // The exact material and hash are part of the format (spec/plan.md); changing them
    // invalidates every cache, so this test must only change with a version bump.
    let mut n = Node::new("p.a", NodeKind::Op, "x.y", "Int");
    n.params
        .insert("b".into(), json!({"z": 1, "a": [1.5, "s"]}));
    n.inputs.push(mlp_plan::Input::new("in", "p.up"));
    let material = canonical_json(&key_material(&n, |_| Some("k0")));
    assert_eq!(
        material,
        r#"{"inputs":[["in","k0"]],"op":"x.y","op_version":1,"params":{"b":{"a":[1.5,"s"],"z":1}}}"#
    );
    let mut p = mlp_plan::PipelinePlan {
        name: "p".into(),
        doc: None,
        params: vec![],
        nodes: vec![Node::new("p.up", NodeKind::Op, "x.src", "Int"), n],
        schedule: None,
    };
    compute_cache_keys(&mut p);
    let up_key = p.nodes[0].cache_key.clone();
    assert_eq!(
        up_key,
        "bfa678710a67083fc9f8478e6fab8975178fb0236c4e73b8dd580eefb111a444"
    );
    assert_eq!(
        up_key,
        blake3::hash(br#"{"inputs":[],"op":"x.src","op_version":1,"params":{}}"#)
            .to_hex()
            .to_string()
    );
    let expected = canonical_json(&key_material(&p.nodes[1], |_| Some(up_key.as_str())));
    assert_eq!(
        p.nodes[1].cache_key,
        blake3::hash(expected.as_bytes()).to_hex().to_string()
    );
}

#[test]
fn renaming_a_binding_keeps_every_key() {
    let before = common::sample_plan();
    let mut after = before.clone();
    for n in &mut after.pipelines[0].nodes {
        if n.id == "trace_embeddings.traces" {
            n.id = "trace_embeddings.normalized".into();
        }
        for i in &mut n.inputs {
            if i.from == "trace_embeddings.traces" {
                i.from = "trace_embeddings.normalized".into();
            }
        }
    }
    after.compute_cache_keys();
    let old: Vec<_> = before.pipelines[0]
        .nodes
        .iter()
        .map(|n| &n.cache_key)
        .collect();
    let new: Vec<_> = after.pipelines[0]
        .nodes
        .iter()
        .map(|n| &n.cache_key)
        .collect();
    assert_eq!(old, new);
}

#[test]
fn type_device_resources_span_do_not_enter_the_key() {
    let before = common::sample_plan();
    let mut after = before.clone();
    let n = common::node_mut(&mut after, 0, "trace_embeddings.cube");
    n.ty = "Volume[il, xl, t]".into();
    n.device = Device::Gpu;
    n.resources.memory = Some(1);
    n.span = None;
    after.compute_cache_keys();
    assert_eq!(keys(&before, 0), keys(&after, 0));
}

#[test]
fn param_order_inside_values_does_not_matter() {
    let mut a = common::sample_plan();
    let mut b = common::sample_plan();
    common::node_mut(&mut a, 0, "trace_embeddings.index")
        .params
        .insert(
            "extra".into(),
            serde_json::from_str(r#"{"x": 1, "y": 2}"#).unwrap(),
        );
    common::node_mut(&mut b, 0, "trace_embeddings.index")
        .params
        .insert(
            "extra".into(),
            serde_json::from_str(r#"{"y": 2, "x": 1}"#).unwrap(),
        );
    a.compute_cache_keys();
    b.compute_cache_keys();
    assert_eq!(keys(&a, 0), keys(&b, 0));
}

#[test]
fn a_param_change_rekeys_the_node_and_everything_downstream_only() {
    let before = common::sample_plan();
    let mut after = before.clone();
    common::node_mut(&mut after, 0, "trace_embeddings.ae")
        .params
        .insert(
            "encoder".into(),
            json!([{"fn": "nn.dense", "args": {"units": 256}}]),
        );
    after.compute_cache_keys();
    let (old, new) = (keys(&before, 0), keys(&after, 0));
    for id in ["cube", "traces"] {
        let id = format!("trace_embeddings.{id}");
        assert_eq!(old[&id], new[&id], "{id} is upstream and must keep its key");
    }
    for id in ["ae", "fit", "index/encode", "index", "output[0]"] {
        let id = format!("trace_embeddings.{id}");
        assert_ne!(
            old[&id], new[&id],
            "{id} is the changed node or downstream of it"
        );
    }
    assert_eq!(
        keys(&before, 1),
        keys(&after, 1),
        "other pipelines are untouched"
    );
}

#[test]
fn op_version_and_argument_names_enter_the_key() {
    let before = common::sample_plan();
    let mut after = before.clone();
    common::node_mut(&mut after, 0, "trace_embeddings.index").op_version = 2;
    after.compute_cache_keys();
    assert_ne!(
        keys(&before, 0)["trace_embeddings.index"],
        keys(&after, 0)["trace_embeddings.index"]
    );

    let mut after = before.clone();
    common::node_mut(&mut after, 0, "trace_embeddings.fit").inputs[1].name = "data".into();
    after.compute_cache_keys();
    assert_ne!(
        keys(&before, 0)["trace_embeddings.fit"],
        keys(&after, 0)["trace_embeddings.fit"]
    );
}

#[test]
fn quantities_hash_by_value_not_spelling() {
    use mlp_plan::value::{quantity, Quantity};
    let mut a = common::sample_plan();
    let mut b = common::sample_plan();
    let spelled = |text: &str| json!({"window": [quantity(Quantity::Duration, 0.004, "s", text)]});
    common::node_mut(&mut a, 0, "trace_embeddings.cube")
        .params
        .insert("agc".into(), spelled("4 ms"));
    common::node_mut(&mut b, 0, "trace_embeddings.cube")
        .params
        .insert("agc".into(), spelled("0.004 s"));
    a.compute_cache_keys();
    b.compute_cache_keys();
    assert_eq!(keys(&a, 0), keys(&b, 0));
    // ...but the value itself counts.
    common::node_mut(&mut b, 0, "trace_embeddings.cube")
        .params
        .insert(
            "agc".into(),
            json!({"window": [quantity(Quantity::Duration, 0.008, "s", "8 ms")]}),
        );
    b.compute_cache_keys();
    assert_ne!(
        keys(&a, 0)["trace_embeddings.cube"],
        keys(&b, 0)["trace_embeddings.cube"]
    );
}
