//! Plan diffs: which nodes change and, above all, why.
mod common;

use mlp_plan::{diff, Device, NodeChange, PipelineChange, PipelineStatus, Plan, Reason};
use serde_json::json;

fn changed<'a>(d: &'a mlp_plan::PlanDiff, id: &str) -> &'a mlp_plan::NodeDiff {
    d.pipelines
        .iter()
        .flat_map(|p| &p.nodes)
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("{id} not in diff:\n{}", d.render_text()))
}

fn edit(f: impl FnOnce(&mut Plan)) -> (Plan, Plan) {
    let old = common::sample_plan();
    let mut new = old.clone();
    f(&mut new);
    new.compute_cache_keys();
    (old, new)
}

#[test]
fn identical_plans_have_an_empty_diff() {
    let d = diff(&common::sample_plan(), &common::sample_plan());
    assert!(d.is_empty());
    assert_eq!(
        (d.to_add, d.to_change, d.to_remove, d.unchanged),
        (0, 0, 0, 11)
    );
    assert_eq!(
        d.render_text(),
        "No changes.\n\nPlan: 0 to add, 0 to change, 0 to remove (11 unchanged).\n"
    );
}

#[test]
fn nested_param_change_has_a_path_and_downstream_nodes_name_their_upstream() {
    let (old, new) = edit(|p| {
        let ae = common::node_mut(p, 0, "trace_embeddings.ae");
        ae.params.get_mut("encoder").unwrap()[4]["args"]["units"] = json!(64);
    });
    let d = diff(&old, &new);
    assert!(!d.is_empty());
    assert_eq!(
        (d.to_add, d.to_change, d.to_remove, d.unchanged),
        (0, 5, 0, 6)
    );
    assert_eq!(
        changed(&d, "trace_embeddings.ae").reasons,
        vec![Reason::ParamChanged {
            path: "encoder[4].args.units".into(),
            old: json!(32),
            new: json!(64)
        }]
    );
    assert_eq!(
        changed(&d, "trace_embeddings.fit").reasons,
        vec![Reason::UpstreamChanged {
            name: "model".into(),
            from: "trace_embeddings.ae".into()
        }]
    );
    // encode reads fit (changed) and traces (unchanged): only fit is named.
    assert_eq!(
        changed(&d, "trace_embeddings.index/encode").reasons,
        vec![Reason::UpstreamChanged {
            name: "model".into(),
            from: "trace_embeddings.fit".into()
        }]
    );
    assert!(changed(&d, "trace_embeddings.output[0]").cache_key_changed);

    let text = d.render_text();
    let expected = "\
~ pipeline trace_embeddings
    ~ trace_embeddings.ae (nn.autoencoder)
        param `encoder[4].args.units`: 32 → 64
    ~ trace_embeddings.fit (nn.train)
        upstream input `trace_embeddings.ae` changed (cache key)
    ~ trace_embeddings.index/encode (nn.encode)
        upstream input `trace_embeddings.fit` changed (cache key)
    ~ trace_embeddings.index (vector.hnsw)
        upstream input `trace_embeddings.index/encode` changed (cache key)
    ~ trace_embeddings.output[0] (io.output)
        upstream input `trace_embeddings.index` changed (cache key)
    unchanged: 2 nodes

Plan: 0 to add, 5 to change, 0 to remove (6 unchanged).
";
    assert_eq!(text, expected);
}

#[test]
fn params_added_and_removed() {
    let (old, new) = edit(|p| {
        let fit = common::node_mut(p, 0, "trace_embeddings.fit");
        fit.params.remove("seed");
        fit.params.insert("shuffle".into(), json!(true));
    });
    let d = diff(&old, &new);
    let reasons = &changed(&d, "trace_embeddings.fit").reasons;
    assert!(reasons.contains(&Reason::ParamRemoved {
        path: "seed".into(),
        old: json!(7)
    }));
    assert!(reasons.contains(&Reason::ParamAdded {
        path: "shuffle".into(),
        new: json!(true)
    }));
    let text = d.render_text();
    assert!(text.contains("param `seed` removed (was 7)"), "{text}");
    assert!(text.contains("param `shuffle` added: true"), "{text}");
}

#[test]
fn list_growth_and_config_function_change() {
    let (old, new) = edit(|p| {
        let ae = common::node_mut(p, 0, "trace_embeddings.ae");
        let enc = ae
            .params
            .get_mut("encoder")
            .unwrap()
            .as_array_mut()
            .unwrap();
        enc[1] = json!({"fn": "nn.gelu", "args": {}});
        enc.push(json!({"fn": "nn.relu", "args": {}}));
    });
    let d = diff(&old, &new);
    let r = &changed(&d, "trace_embeddings.ae").reasons;
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(matches!(&r[0], Reason::ParamChanged { path, .. } if path == "encoder[1]"));
    assert!(matches!(&r[1], Reason::ParamAdded { path, .. } if path == "encoder[5]"));
    assert!(d
        .render_text()
        .contains("param `encoder[1]`: nn.relu → nn.gelu"));
}

#[test]
fn quantities_change_as_a_whole() {
    let (old, new) = edit(|p| {
        common::node_mut(p, 0, "trace_embeddings.cube")
            .params
            .insert(
                "sample_interval".into(),
                json!({"quantity": "duration", "value": 0.008, "unit": "s", "text": "8 ms"}),
            );
    });
    let d = diff(&old, &new);
    assert_eq!(changed(&d, "trace_embeddings.cube").reasons.len(), 1);
    assert!(d
        .render_text()
        .contains("param `sample_interval`: 4 ms → 8 ms"));
}

#[test]
fn op_version_bump() {
    let (old, new) = edit(|p| common::node_mut(p, 0, "trace_embeddings.index").op_version = 2);
    let d = diff(&old, &new);
    assert_eq!(
        changed(&d, "trace_embeddings.index").reasons,
        vec![Reason::OpVersionChanged { old: 1, new: 2 }]
    );
    assert!(d.render_text().contains("        op_version: 1 → 2\n"));
    assert_eq!(d.to_change, 2, "the output downstream reruns too");
}

#[test]
fn nodes_added_and_removed() {
    let (old, new) = edit(|p| {
        let nodes = &mut p.pipelines[0].nodes;
        let out = nodes.pop().unwrap();
        let mut out2 = out.clone();
        out2.id = "trace_embeddings.output[1]".into();
        out2.params.insert("path".into(), json!("out/other.index"));
        nodes.push(out2);
    });
    let d = diff(&old, &new);
    assert_eq!((d.to_add, d.to_change, d.to_remove), (1, 0, 1));
    assert_eq!(
        changed(&d, "trace_embeddings.output[1]").change,
        NodeChange::Added
    );
    assert_eq!(
        changed(&d, "trace_embeddings.output[0]").change,
        NodeChange::Removed
    );
    let text = d.render_text();
    assert!(
        text.contains("\n    + trace_embeddings.output[1] (io.output)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n    - trace_embeddings.output[0] (io.output)\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 1 to add, 0 to change, 1 to remove (10 unchanged).\n"),
        "{text}"
    );
}

#[test]
fn a_rename_is_not_a_rerun() {
    let (old, new) = edit(|p| {
        for n in &mut p.pipelines[0].nodes {
            if n.id == "trace_embeddings.traces" {
                n.id = "trace_embeddings.normalized".into();
            }
            for i in &mut n.inputs {
                if i.from == "trace_embeddings.traces" {
                    i.from = "trace_embeddings.normalized".into();
                }
            }
        }
    });
    let d = diff(&old, &new);
    assert_eq!(
        (d.to_add, d.to_change, d.to_remove, d.unchanged),
        (0, 1, 0, 10)
    );
    let n = changed(&d, "trace_embeddings.normalized");
    assert_eq!(
        n.reasons,
        vec![Reason::Renamed {
            from: "trace_embeddings.traces".into()
        }]
    );
    assert!(!n.cache_key_changed);
    assert!(d
        .render_text()
        .contains("~ trace_embeddings.normalized (seismic.rms_normalize) (cache key unchanged)\n        renamed from `trace_embeddings.traces`\n"));
}

#[test]
fn placement_changes_keep_the_cache_key() {
    let (old, new) =
        edit(|p| common::node_mut(p, 0, "trace_embeddings.index").device = Device::Gpu);
    let d = diff(&old, &new);
    let n = changed(&d, "trace_embeddings.index");
    assert_eq!(
        n.reasons,
        vec![Reason::DeviceChanged {
            old: Device::Any,
            new: Device::Gpu
        }]
    );
    assert!(!n.cache_key_changed);
    assert_eq!(d.to_change, 1, "nothing downstream changes");
}

#[test]
fn inputs_rewired() {
    let (old, new) = edit(|p| {
        common::node_mut(p, 0, "trace_embeddings.index/encode").inputs[1].from =
            "trace_embeddings.cube".into();
    });
    let d = diff(&old, &new);
    assert_eq!(
        changed(&d, "trace_embeddings.index/encode").reasons,
        vec![Reason::InputRewired {
            name: "x".into(),
            old: "trace_embeddings.traces".into(),
            new: "trace_embeddings.cube".into()
        }]
    );
}

#[test]
fn pipelines_added_removed_and_pipeline_level_changes() {
    let (old, new) = edit(|p| {
        p.pipelines.remove(1);
        p.pipelines[0].params[1].value = json!(64);
        p.pipelines[0].params[1].overridden = true;
        p.pipelines[0].schedule = Some(json!({"cron": "@daily"}));
    });
    let d = diff(&old, &new);
    assert_eq!(d.pipelines[0].status, PipelineStatus::Changed);
    assert_eq!(d.pipelines[1].status, PipelineStatus::Removed);
    assert_eq!(d.to_remove, 4);
    assert!(
        matches!(&d.pipelines[0].changes[0], PipelineChange::ParamChanged { new, .. } if new.name == "dim")
    );
    let text = d.render_text();
    assert!(
        text.contains("    ~ param `dim`: 32 → 64 (now overridden)\n"),
        "{text}"
    );
    assert!(
        text.contains("    ~ schedule: none → {\"cron\":\"@daily\"}\n"),
        "{text}"
    );
    assert!(
        text.contains("- pipeline docs_rag\n    - docs_rag.docs (text.load)\n"),
        "{text}"
    );

    let back = diff(&new, &old);
    assert_eq!(back.pipelines[1].status, PipelineStatus::Added);
    assert_eq!(back.to_add, 4);
}

#[test]
fn pipeline_param_change_alone_is_not_empty() {
    let (old, new) = edit(|p| p.pipelines[0].params[0].overridden = true);
    let d = diff(&old, &new);
    assert!(!d.is_empty());
    assert_eq!(d.to_change, 0);
}

#[test]
fn diff_serializes_for_json_output() {
    let (old, new) = edit(|p| common::node_mut(p, 0, "trace_embeddings.index").op_version = 3);
    let v = serde_json::to_value(diff(&old, &new)).unwrap();
    assert_eq!(v["to_change"], json!(2));
    let node = &v["pipelines"][0]["nodes"][0];
    assert_eq!(node["id"], json!("trace_embeddings.index"));
    assert_eq!(node["change"], json!("changed"));
    assert_eq!(
        node["reasons"][0],
        json!({"kind": "op_version_changed", "old": 1, "new": 3})
    );
}
