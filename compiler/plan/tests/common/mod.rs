//! A sample plan shared by the integration tests: the `trace_embeddings` pipeline of the design
//! notes plus a small RAG pipeline that exercises quantities, secrets, configs, a schedule and
//! a deploy node.
#![allow(dead_code)]

use mlp_plan::value::{config, input_ref, quantity, secret, Quantity};
use mlp_plan::{
    Device, Input, Node, NodeKind, ParamValue, PipelinePlan, Plan, Resources, SourceSpan,
};
use serde_json::{json, Map, Value};

pub fn args(v: Value) -> Map<String, Value> {
    v.as_object().expect("args are an object").clone()
}

fn node(
    id: &str,
    kind: NodeKind,
    op: &str,
    ty: &str,
    params: Value,
    inputs: &[(&str, &str)],
) -> Node {
    let mut n = Node::new(id, kind, op, ty);
    n.params = params
        .as_object()
        .expect("params are an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    n.inputs = inputs
        .iter()
        .map(|(name, from)| Input::new(*name, *from))
        .collect();
    n
}

pub fn trace_embeddings() -> PipelinePlan {
    let dense = |units: u32| config("nn.dense", args(json!({ "units": units })));
    let relu = || config("nn.relu", Map::new());
    let mut cube = node(
        "trace_embeddings.cube",
        NodeKind::Op,
        "seismic.segy",
        "Volume[il, xl, 462]",
        json!({"path": "data/synthetic.sgy", "inline_byte": 189, "crossline_byte": 193,
               "sample_interval": quantity(Quantity::Duration, 0.004, "s", "4 ms")}),
        &[],
    );
    cube.device = Device::Cpu;
    cube.resources = Resources {
        cpu: Some(2.0),
        memory: Some(2 << 30),
        gpu: 0,
    };
    cube.span = Some(SourceSpan {
        line: 7,
        column: 3,
        start: 210,
        end: 274,
    });
    let traces = node(
        "trace_embeddings.traces",
        NodeKind::Op,
        "seismic.rms_normalize",
        "Traces[n, 462]",
        json!({}),
        &[("traces", "trace_embeddings.cube")],
    );
    let ae = node(
        "trace_embeddings.ae",
        NodeKind::Op,
        "nn.autoencoder",
        "Model[462 -> 32]",
        json!({"encoder": [dense(128), relu(), dense(64), relu(), dense(32)]}),
        &[],
    );
    let mut fit = node(
        "trace_embeddings.fit",
        NodeKind::Op,
        "nn.train",
        "Trained[Model[462 -> 32]]",
        json!({"epochs": 20, "batch": 256, "seed": 7,
               "optimizer": config("nn.adam", args(json!({"lr": 0.001}))),
               "loss": config("nn.mse", Map::new())}),
        &[
            ("model", "trace_embeddings.ae"),
            ("on", "trace_embeddings.traces"),
        ],
    );
    fit.device = Device::Gpu;
    fit.resources = Resources {
        cpu: Some(4.0),
        memory: Some(8 << 30),
        gpu: 1,
    };
    let mut encode = node(
        "trace_embeddings.index/encode",
        NodeKind::Op,
        "nn.encode",
        "Embeddings[n, 32]",
        json!({}),
        &[
            ("model", "trace_embeddings.fit"),
            ("x", "trace_embeddings.traces"),
        ],
    );
    encode.device = Device::Gpu;
    let index = node(
        "trace_embeddings.index",
        NodeKind::Op,
        "vector.hnsw",
        "Index[32]",
        json!({"m": 16, "ef_construction": 200}),
        &[("vectors", "trace_embeddings.index/encode")],
    );
    let out = node(
        "trace_embeddings.output[0]",
        NodeKind::Output,
        "io.output",
        "Unit",
        json!({"path": "out/traces.index"}),
        &[("value", "trace_embeddings.index")],
    );
    let mut p = PipelinePlan {
        name: "trace_embeddings".into(),
        doc: Some(
            "32-d embeddings of every trace of a survey, indexed for similarity search.".into(),
        ),
        params: vec![
            ParamValue {
                name: "survey".into(),
                ty: "Path".into(),
                value: json!("data/synthetic.sgy"),
                overridden: false,
            },
            ParamValue {
                name: "dim".into(),
                ty: "Int".into(),
                value: json!(32),
                overridden: false,
            },
        ],
        nodes: vec![cube, traces, ae, fit, encode, index, out],
        schedule: None,
    };
    mlp_plan::compute_cache_keys(&mut p);
    p
}

pub fn docs_rag() -> PipelinePlan {
    let docs = node(
        "docs_rag.docs",
        NodeKind::Op,
        "text.load",
        "List[Document]",
        json!({"glob": "docs/**/*.md"}),
        &[],
    );
    let chunks = node(
        "docs_rag.chunks",
        NodeKind::Op,
        "text.chunk",
        "List[Chunk]",
        json!({"size": quantity(Quantity::TextSize, 512.0, "tokens", "512 tokens"),
               "overlap": quantity(Quantity::Percent, 0.1, "fraction", "10 %")}),
        &[("docs", "docs_rag.docs")],
    );
    let emb = node(
        "docs_rag.emb",
        NodeKind::Op,
        "text.embed",
        "Embeddings[n, 384]",
        json!({"model": config("text.minilm", Map::new()), "token": secret("HF_TOKEN"),
               "sources": [input_ref("sources[0]")]}),
        &[("sources[0]", "docs_rag.chunks")],
    );
    let serve = node(
        "docs_rag.serve",
        NodeKind::Deploy,
        "serve.http",
        "Service",
        json!({"port": 8080, "timeout": quantity(Quantity::Duration, 30.0, "s", "30 s"),
               "limit": quantity(Quantity::Rate, 10.0, "/s", "10/s")}),
        &[("index", "docs_rag.emb")],
    );
    let mut p = PipelinePlan {
        name: "docs_rag".into(),
        doc: Some("Answer \"questions\" over <docs> & notes.".into()),
        params: vec![],
        nodes: vec![docs, chunks, emb, serve],
        schedule: Some(config("core.cron", args(json!({"expr": "0 3 * * *"})))),
    };
    mlp_plan::compute_cache_keys(&mut p);
    p
}

pub fn sample_plan() -> Plan {
    let mut plan = Plan::new(
        "mlp 0.1.0",
        "examples/trace_embeddings.mlp",
        b"pipeline trace_embeddings() {}\n",
    );
    plan.pipelines = vec![trace_embeddings(), docs_rag()];
    plan
}

/// The node `id` of pipeline `pipeline`, mutably.
pub fn node_mut<'a>(plan: &'a mut Plan, pipeline: usize, id: &str) -> &'a mut Node {
    plan.pipelines[pipeline]
        .nodes
        .iter_mut()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("no node {id}"))
}
