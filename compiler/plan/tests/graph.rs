//! DOT and Mermaid renderings.
mod common;

use mlp_plan::{to_dot, to_mermaid, Plan};

#[test]
fn dot_has_clusters_nodes_and_labelled_edges() {
    let dot = to_dot(&common::sample_plan());
    assert!(dot.starts_with("digraph plan {\n"));
    assert!(dot.ends_with("}\n"));
    assert!(dot.contains("subgraph cluster_0 {"));
    assert!(dot.contains("subgraph cluster_1 {"));
    assert!(dot
        .contains(r#""trace_embeddings.cube" [label="cube\nseismic.segy\nVolume[il, xl, 462]"];"#));
    assert!(dot.contains(r#""trace_embeddings.index/encode" [label="index/encode\nnn.encode [gpu]\nEmbeddings[n, 32]"];"#));
    assert!(
        dot.contains(r#""trace_embeddings.cube" -> "trace_embeddings.traces" [label="traces"];"#)
    );
    assert!(dot
        .contains(r#""trace_embeddings.fit" -> "trace_embeddings.index/encode" [label="model"];"#));
    assert!(dot.contains(
        r#""trace_embeddings.output[0]" [label="output[0]\nio.output\nUnit", shape=note"#
    ));
    assert!(
        dot.contains(r#""docs_rag.serve" [label="serve\nserve.http\nService", shape=component"#)
    );
    // The doc string's quotes are escaped, not closing the label.
    assert!(
        dot.contains(r#"label="pipeline docs_rag\nAnswer \"questions\" over <docs> & notes.";"#)
    );
    let edges = dot.matches("\" -> \"").count();
    let inputs: usize = common::sample_plan()
        .pipelines
        .iter()
        .flat_map(|p| &p.nodes)
        .map(|n| n.inputs.len())
        .sum();
    assert_eq!(edges, inputs);
}

#[test]
fn mermaid_has_subgraphs_sanitized_ids_and_escaped_labels() {
    let m = to_mermaid(&common::sample_plan());
    assert!(m.starts_with("flowchart TB\n"));
    assert!(m.contains("  subgraph p_0[\"pipeline trace_embeddings\"]\n"));
    assert!(m.contains(
        "    n_trace_embeddings_cube[\"cube<br/>seismic.segy<br/>Volume[il, xl, 462]\"]\n"
    ));
    assert!(m.contains(
        "    n_trace_embeddings_ae[\"ae<br/>nn.autoencoder<br/>Model[462 -#gt; 32]\"]\n"
    ));
    assert!(
        m.contains("  n_trace_embeddings_index_encode -->|\"vectors\"| n_trace_embeddings_index\n")
    );
    assert!(m.contains(
        "    n_trace_embeddings_output_0_[/\"output[0]<br/>io.output<br/>Unit\"/]:::output\n"
    ));
    assert!(m.contains("    n_docs_rag_serve{{\"serve<br/>serve.http<br/>Service\"}}:::deploy\n"));
    // Every node id and edge endpoint uses only the safe alphabet.
    for line in m.lines().filter(|l| l.contains("-->")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for id in [parts[0], parts[2]] {
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{id}"
            );
        }
    }
    assert_eq!(m.matches("  end\n").count(), 2);
}

#[test]
fn renderings_are_deterministic() {
    let a = common::sample_plan();
    let b = Plan::from_json(&a.to_json()).unwrap();
    assert_eq!(to_dot(&a), to_dot(&b));
    assert_eq!(to_mermaid(&a), to_mermaid(&b));
    assert_eq!(to_dot(&a), to_dot(&a));
}
