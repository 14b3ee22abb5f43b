// Shared helpers for the integration tests (included with `mod common;`).
#![allow(dead_code)]

use mlp_vector::{synth, BuildParams, Index, Metric};

pub fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

pub fn clustered(n: usize, dim: usize, stream: u64, seed: u64) -> Vec<f32> {
    let mut spec = synth::Spec::new(dim, seed);
    spec.latent = dim.min(16);
    spec.clusters = 16;
    synth::clustered(&spec, n, stream)
}

pub fn small_index(metric: Metric, n: usize, dim: usize) -> (Index, Vec<f32>) {
    let data = clustered(n, dim, 0, 7);
    let md = (0..n).map(|i| serde_json::json!({ "i": i })).collect();
    let params = BuildParams {
        ef_construction: 40,
        ef_search: 32,
        seed: 1,
        exact: false,
    };
    let index = Index::build(
        "test-embedder",
        dim,
        metric,
        params,
        &data,
        ids(n, "doc"),
        md,
    )
    .expect("build");
    (index, data)
}

/// Mean overlap of the top-k id sets.
pub fn recall(got: &[Vec<mlp_vector::Hit>], want: &[Vec<mlp_vector::Hit>], k: usize) -> f64 {
    let mut sum = 0.0;
    for (g, w) in got.iter().zip(want) {
        let w: std::collections::HashSet<&str> = w.iter().take(k).map(|h| h.id.as_str()).collect();
        sum += g
            .iter()
            .take(k)
            .filter(|h| w.contains(h.id.as_str()))
            .count() as f64
            / w.len().max(1) as f64;
    }
    sum / got.len().max(1) as f64
}
