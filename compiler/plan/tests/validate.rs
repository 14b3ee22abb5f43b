//! `validate()` and the JSON Schema.
mod common;

use mlp_plan::{schema, validate, Input, Plan};
use serde_json::{json, Value};

fn errors(plan: &Plan) -> Vec<String> {
    validate(plan).expect_err("plan should be invalid")
}

#[test]
fn the_sample_plan_is_valid() {
    assert_eq!(validate(&common::sample_plan()), Ok(()));
    let read = Plan::from_json(&common::sample_plan().to_json()).unwrap();
    assert_eq!(validate(&read), Ok(()));
}

#[test]
fn dangling_input_is_reported_with_the_node_id() {
    let mut plan = common::sample_plan();
    common::node_mut(&mut plan, 0, "trace_embeddings.index")
        .inputs
        .push(Input::new("filter", "trace_embeddings.nowhere"));
    plan.compute_cache_keys();
    let errs = errors(&plan);
    assert_eq!(
        errs,
        vec!["node `trace_embeddings.index`: input `filter` refers to unknown node `trace_embeddings.nowhere`"]
    );
}

#[test]
fn forward_reference_breaks_topological_order() {
    let mut plan = common::sample_plan();
    plan.pipelines[0].nodes.swap(0, 1);
    let errs = errors(&plan);
    assert!(
        errs.iter().any(|e| e.contains("`trace_embeddings.traces`: input `traces` refers to `trace_embeddings.cube`, which comes after it")),
        "{errs:#?}"
    );
}

#[test]
fn duplicate_ids_are_reported() {
    let mut plan = common::sample_plan();
    plan.pipelines[1].nodes[2].id = "docs_rag.chunks".into();
    plan.compute_cache_keys();
    let errs = errors(&plan);
    assert!(
        errs.contains(
            &"pipeline `docs_rag`: duplicate node id `docs_rag.chunks` (nodes #1 and #2)"
                .to_string()
        ),
        "{errs:#?}"
    );
}

#[test]
fn stale_key_is_reported_once_where_it_went_wrong() {
    let mut plan = common::sample_plan();
    common::node_mut(&mut plan, 0, "trace_embeddings.ae")
        .params
        .insert("seed".into(), json!(1));
    let errs = errors(&plan);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("node `trace_embeddings.ae`: stale cache key"),
        "{errs:#?}"
    );
}

#[test]
fn format_version_and_ids_are_checked() {
    let mut plan = common::sample_plan();
    plan.format = "other".into();
    plan.version = 2;
    plan.pipelines[1].nodes[0].id = "elsewhere.docs".into();
    plan.pipelines[1].nodes[1].inputs[0].from = "elsewhere.docs".into();
    plan.compute_cache_keys();
    let errs = errors(&plan);
    assert!(
        errs.iter().any(|e| e.starts_with("format is \"other\"")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("version 2 is unsupported")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("node id `elsewhere.docs` must be `docs_rag.<binding>`")),
        "{errs:#?}"
    );
}

#[test]
fn malformed_tagged_values_are_reported_with_their_path() {
    let mut plan = common::sample_plan();
    let ae = common::node_mut(&mut plan, 0, "trace_embeddings.ae");
    ae.params.get_mut("encoder").unwrap()[1] = json!({"fn": "nn.relu"});
    let cube = common::node_mut(&mut plan, 0, "trace_embeddings.cube");
    cube.params.get_mut("sample_interval").unwrap()["unit"] = json!("ms");
    plan.pipelines[1].params.push(mlp_plan::ParamValue {
        name: "token".into(),
        ty: "Secret".into(),
        value: json!({"secret": "K", "value": "leaked"}),
        overridden: false,
    });
    plan.compute_cache_keys();
    let errs = errors(&plan);
    assert_eq!(
        errs,
        vec![
            "pipeline `trace_embeddings`: node `trace_embeddings.cube`: param `sample_interval`: unit `ms` is not a unit of duration",
            "pipeline `trace_embeddings`: node `trace_embeddings.ae`: param `encoder[1]`: config without an `args` object",
            "pipeline `docs_rag`: param `token`: unexpected field `value`",
        ]
    );
}

#[test]
fn input_placeholders_must_name_an_input() {
    let mut plan = common::sample_plan();
    plan.pipelines[1].nodes[2].inputs[0].name = "sources[1]".into();
    plan.compute_cache_keys();
    assert_eq!(
        errors(&plan),
        vec!["pipeline `docs_rag`: node `docs_rag.emb`: param `sources[0]`: placeholder refers to input `sources[0]`, which the node does not have"]
    );
}

#[test]
fn keys_must_have_been_computed() {
    let mut plan = common::sample_plan();
    plan.pipelines[0].nodes[0].cache_key.clear();
    let errs = errors(&plan);
    assert!(errs[0].contains("were cache keys computed?"), "{errs:#?}");
}

// ---- JSON Schema ----

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(schema()).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn schema_errors(instance: &Value) -> Vec<String> {
    validator()
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect()
}

fn sample_value() -> Value {
    serde_json::from_str(&common::sample_plan().to_json()).unwrap()
}

#[test]
fn the_sample_plan_matches_the_schema() {
    assert_eq!(schema_errors(&sample_value()), Vec::<String>::new());
}

#[test]
fn the_snapshot_file_matches_the_schema() {
    // Read at run time, not with include_str!, so a snapshot just rewritten is the one checked.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample.plan.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        schema_errors(&serde_json::from_str(&text).unwrap()),
        Vec::<String>::new()
    );
}

/// Each mutation breaks the sample in one way the schema must catch.
#[test]
fn broken_plans_do_not_match_the_schema() {
    type Mutation = fn(&mut Value);
    let cases: Vec<(&str, Mutation)> = vec![
        ("short cache key", |v| {
            v["pipelines"][0]["nodes"][0]["cache_key"] = json!("abc")
        }),
        ("unknown top-level field", |v| v["extra"] = json!(1)),
        ("unknown node field", |v| {
            v["pipelines"][0]["nodes"][0]["retries"] = json!(3)
        }),
        ("version 2", |v| v["version"] = json!(2)),
        ("missing op", |v| {
            v["pipelines"][0]["nodes"][0]
                .as_object_mut()
                .unwrap()
                .remove("op");
        }),
        ("bad kind", |v| {
            v["pipelines"][0]["nodes"][0]["kind"] = json!("task")
        }),
        ("bad device", |v| {
            v["pipelines"][0]["nodes"][0]["device"] = json!("tpu")
        }),
        ("unqualified op", |v| {
            v["pipelines"][0]["nodes"][0]["op"] = json!("segy")
        }),
        ("id with a space", |v| {
            v["pipelines"][0]["nodes"][0]["id"] = json!("trace_embeddings.my cube")
        }),
        ("quantity in ms", |v| {
            v["pipelines"][0]["nodes"][0]["params"]["sample_interval"]["unit"] = json!("ms")
        }),
        ("unknown quantity", |v| {
            v["pipelines"][0]["nodes"][0]["params"]["sample_interval"]["quantity"] = json!("mass")
        }),
        ("secret with a value", |v| {
            v["pipelines"][1]["nodes"][2]["params"]["token"]["value"] = json!("hf_123")
        }),
        ("config without args", |v| {
            v["pipelines"][1]["nodes"][2]["params"]["model"] = json!({"fn": "text.minilm"})
        }),
        ("nested bad config", |v| {
            v["pipelines"][0]["nodes"][2]["params"]["encoder"][0]["args"]["units"] =
                json!({"fn": 3, "args": {}})
        }),
        ("negative gpu", |v| {
            v["pipelines"][0]["nodes"][3]["resources"]["gpu"] = json!(-1)
        }),
        ("source hash not hex", |v| v["source"]["hash"] = json!("zz")),
        ("schedule with a bad config", |v| {
            v["pipelines"][1]["schedule"] = json!({"fn": "core.cron", "args": [1]})
        }),
        ("placeholder with extra field", |v| {
            v["pipelines"][1]["nodes"][2]["params"]["sources"][0]["as"] = json!("x")
        }),
        ("input name with a space", |v| {
            v["pipelines"][1]["nodes"][2]["inputs"][0]["name"] = json!("sources 0")
        }),
        ("rate in /min", |v| {
            v["pipelines"][1]["nodes"][3]["params"]["limit"]["unit"] = json!("/min")
        }),
    ];
    for (what, mutate) in cases {
        let mut v = sample_value();
        mutate(&mut v);
        assert!(
            !schema_errors(&v).is_empty(),
            "schema accepted a plan with {what}"
        );
    }
}
