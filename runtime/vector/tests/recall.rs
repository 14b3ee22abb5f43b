//! Recall of the graph against exact search, for every metric.

mod common;

use std::time::Instant;

use common::*;
use mlp_vector::{synth, BuildParams, Index, Metric};

fn check(metric: Metric, n: usize, dim: usize) {
    let t = Instant::now();
    // The benchmark's distribution (intrinsic dimension = dim, 64 clusters): not trivially easy.
    let spec = synth::Spec::new(dim, 42);
    let data = synth::clustered(&spec, n, 0);
    let queries = synth::clustered(&spec, 300, 1);
    let mut index = Index::build(
        "synthetic",
        dim,
        metric,
        BuildParams::default(),
        &data,
        ids(n, "v"),
        Vec::new(),
    )
    .unwrap();
    let built = t.elapsed();
    let approx = index.search_batch(&queries, 10).unwrap();
    let exact = index.search_exact_batch(&queries, 10).unwrap();
    let r = recall(&approx, &exact, 10);
    eprintln!(
        "{metric}: {n} x {dim}, recall@10 = {r:.4} (build {built:?}, total {:?})",
        t.elapsed()
    );
    assert!(r >= 0.95, "{metric}: recall@10 {r:.4} < 0.95");
    // With the smallest useful candidate list the graph alone must still do well; this is
    // what catches a degraded graph (at ef_search 64 these sizes are easy).
    index.set_ef_search(10).unwrap();
    let r10 = recall(&index.search_batch(&queries, 10).unwrap(), &exact, 10);
    eprintln!("{metric}: recall@10 at ef_search 10 = {r10:.4}");
    assert!(
        r10 >= 0.9,
        "{metric}: recall@10 at ef_search 10 is {r10:.4} < 0.9"
    );
    // The exact batch agrees with single exact searches.
    for (q, want) in queries.chunks(dim).zip(&exact).take(20) {
        let got = index.search_exact(q, 10).unwrap();
        let a: Vec<&str> = got.iter().map(|h| h.id.as_str()).collect();
        let b: Vec<&str> = want.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(a, b);
    }
}

#[test]
fn recall_cosine() {
    check(Metric::Cosine, 10_000, 64);
}

#[test]
fn recall_dot() {
    check(Metric::Dot, 10_000, 64);
}

#[test]
fn recall_l2() {
    check(Metric::L2, 10_000, 64);
}

/// The size the issue names (about 3x the time of the tests above); opt in with `--ignored`.
#[test]
#[ignore]
fn recall_20k_x_64_every_metric() {
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
        check(metric, 20_000, 64);
    }
}
