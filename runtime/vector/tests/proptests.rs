//! Property tests: metric bounds, exact search against a naive scan, and damaged files.

mod common;

use mlp_vector::metrics::{evaluate, Qrels, Run};
use mlp_vector::{BuildParams, Index, Metric};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every score lies in [0, 1]; a run that ranks by relevance has nDCG 1 and full recall
    /// (when k covers every relevant document).
    #[test]
    fn metric_bounds_and_ideal_runs(
        judgments in proptest::collection::vec((0u8..6, 0u8..30, -1i32..4), 1..60),
        retrieved in proptest::collection::vec((0u8..6, 0u8..30, 0u16..1000), 0..80),
        k in 0usize..15,
    ) {
        let mut qrels = Qrels::new();
        for (q, d, r) in &judgments {
            qrels.insert(&format!("q{q}"), &format!("d{d}"), *r);
        }
        let mut run = Run::new();
        for (q, d, s) in &retrieved {
            run.entry(format!("q{q}")).or_default().push((format!("d{d}"), *s as f64));
        }
        let rep = evaluate(&run, &qrels, k);
        for s in &rep.per_query {
            prop_assert!((0.0..=1.0).contains(&s.recall));
            prop_assert!((0.0..=1.0).contains(&s.mrr));
            prop_assert!((0.0..=1.0 + 1e-12).contains(&s.ndcg));
            prop_assert!(s.hits <= s.relevant);
        }
        // The ideal run.
        let mut ideal = Run::new();
        for (qid, docs) in qrels.iter() {
            ideal.insert(qid.clone(), docs.iter().map(|(d, r)| (d.clone(), *r as f64)).collect());
        }
        let rep = evaluate(&ideal, &qrels, 0);
        for s in &rep.per_query {
            prop_assert!((s.ndcg - 1.0).abs() < 1e-12, "{s:?}");
            prop_assert!((s.recall - 1.0).abs() < 1e-12);
            prop_assert!((s.mrr - 1.0).abs() < 1e-12);
        }
    }

    /// Exact search returns the same items as a naive f64 scan (up to rounding ties).
    #[test]
    fn exact_search_matches_naive_scan(
        n in 1usize..300,
        dim in 1usize..20,
        seed in 0u64..1000,
        k in 1usize..20,
        metric in prop_oneof![Just(Metric::Cosine), Just(Metric::Dot), Just(Metric::L2)],
    ) {
        let data = common::clustered(n, dim, 0, seed);
        let q = common::clustered(1, dim, 1, seed);
        let index = Index::build("p", dim, metric, BuildParams { exact: true, ..Default::default() },
            &data, common::ids(n, "r"), Vec::new()).unwrap();
        let hits = index.search(&q, k).unwrap();
        prop_assert_eq!(hits.len(), k.min(n));
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let mut naive: Vec<(f64, usize)> = data.chunks(dim).enumerate().map(|(i, x)| {
            let d = match metric {
                Metric::Cosine => 1.0 - x.iter().zip(&q).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() / (norm(x) * norm(&q)),
                Metric::Dot => -x.iter().zip(&q).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>(),
                Metric::L2 => x.iter().zip(&q).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum::<f64>().sqrt(),
            };
            (d, i)
        }).collect();
        naive.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (h, (d, _)) in hits.iter().zip(&naive) {
            // Same distance at each rank (ids may swap between near-equal distances).
            prop_assert!((h.distance as f64 - d).abs() < 1e-3 * (1.0 + d.abs()), "{} vs {}", h.distance, d);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Arbitrary damage to an index file (even with a recomputed checksum) is an error or a
    /// valid index, never a panic.
    #[test]
    fn damaged_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        reseal in any::<bool>(),
    ) {
        let bytes = file_bytes();
        let mut b = bytes.clone();
        for (at, v) in &edits {
            let i = at.index(b.len());
            b[i] = *v;
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len()));
        }
        if reseal && b.len() > 32 {
            let n = b.len();
            let h = blake3::hash(&b[..n - 32]);
            b[n - 32..].copy_from_slice(h.as_bytes());
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.mlpv");
        std::fs::write(&p, &b).unwrap();
        if let Ok(index) = Index::load(&p) {
            // Whatever loaded must be searchable.
            let dim = index.meta().dim;
            let _ = index.search(&vec![0.5; dim.min(64)], 3);
        }
    }
}

fn file_bytes() -> Vec<u8> {
    use std::sync::OnceLock;
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let (index, _) = common::small_index(Metric::Cosine, 40, 4);
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("i.mlpv");
            index.save(&p).unwrap();
            std::fs::read(&p).unwrap()
        })
        .clone()
}
