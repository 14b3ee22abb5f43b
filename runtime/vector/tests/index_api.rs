//! Building, adding and searching: errors, semantics and agreement between the search paths.

mod common;

use common::*;
use mlp_vector::{BuildParams, Index, Metric, VectorError};
use serde_json::json;

fn build(metric: Metric, dim: usize, data: &[f32], ids: Vec<String>) -> Result<Index, VectorError> {
    Index::build(
        "emb",
        dim,
        metric,
        BuildParams::default(),
        data,
        ids,
        Vec::new(),
    )
}

#[test]
fn build_errors_are_clear() {
    let err = build(Metric::L2, 0, &[], vec![]).unwrap_err();
    assert!(
        err.to_string().contains("dimension must be at least 1"),
        "{err}"
    );

    let err = build(Metric::L2, 3, &[1.0; 7], ids(2, "a")).unwrap_err();
    assert!(
        err.to_string().contains("need 6 values") && err.to_string().contains("got 7"),
        "{err}"
    );

    let err = build(
        Metric::L2,
        2,
        &[1.0, 2.0, 3.0, 4.0],
        vec!["a".into(), "a".into()],
    )
    .unwrap_err();
    assert!(
        matches!(&err, VectorError::DuplicateId(id) if id == "a"),
        "{err}"
    );

    let err = build(Metric::L2, 2, &[1.0, f32::NAN], vec!["x".into()]).unwrap_err();
    assert!(
        err.to_string().contains("non-finite") && err.to_string().contains("`x`"),
        "{err}"
    );
    let err = build(Metric::Dot, 2, &[f32::INFINITY, 0.0], vec!["x".into()]).unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");

    let err = build(Metric::Cosine, 2, &[0.0, 0.0], vec!["z".into()]).unwrap_err();
    assert!(err.to_string().contains("zero vector"), "{err}");

    let err = build(Metric::L2, 1, &[1.0], vec![String::new()]).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");

    let err = Index::build(
        "e",
        1,
        Metric::L2,
        BuildParams::default(),
        &[1.0, 2.0],
        ids(2, "m"),
        vec![json!(1)],
    )
    .unwrap_err();
    assert!(err.to_string().contains("metadata"), "{err}");
}

#[test]
fn wrong_query_dimension_names_both_dimensions() {
    let (index, _) = small_index(Metric::Cosine, 50, 8);
    for err in [
        index.search(&[1.0; 5], 3).unwrap_err(),
        index.search_exact(&[1.0; 9], 3).unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(
            matches!(err, VectorError::DimMismatch { expected: 8, .. }),
            "{msg}"
        );
        assert!(
            msg.contains('8') && (msg.contains('5') || msg.contains('9')),
            "{msg}"
        );
    }
    let err = index.search_batch(&[1.0; 12], 3).unwrap_err();
    assert!(err.to_string().contains("not a multiple"), "{err}");
    let err = index.search(&[f32::NAN; 8], 3).unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
    let err = index.search(&[0.0; 8], 3).unwrap_err();
    assert!(err.to_string().contains("zero vector"), "{err}");
}

#[test]
fn embedder_check_names_both_embedders() {
    let (index, _) = small_index(Metric::L2, 20, 4);
    index.check_embedder("test-embedder", 4).unwrap();
    let err = index.check_embedder("other-model", 4).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("test-embedder") && msg.contains("other-model"),
        "{msg}"
    );
    let err = index.check_embedder("test-embedder", 16).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("dimension 4") && msg.contains("dimension 16"),
        "{msg}"
    );
}

#[test]
fn distances_and_scores_follow_the_conventions() {
    let data = [3.0, 4.0, 1.0, 0.0, 0.0, 2.0];
    let q = [1.0, 0.0];
    let cos = build(Metric::Cosine, 2, &data, ids(3, "r")).unwrap();
    let hits = cos.search(&q, 3).unwrap();
    assert_eq!(hits[0].id, "r1");
    assert!(hits[0].distance.abs() < 1e-6 && (hits[0].score - 1.0).abs() < 1e-6);
    assert!((hits[1].score - 0.6).abs() < 1e-6 && (hits[1].distance - 0.4).abs() < 1e-6);
    assert_eq!(hits[2].id, "r2");
    assert!(hits[2].score.abs() < 1e-6);

    let dot = build(Metric::Dot, 2, &data, ids(3, "r")).unwrap();
    let hits = dot.search(&[1.0, 1.0], 3).unwrap();
    let got: Vec<(&str, f32, f32)> = hits
        .iter()
        .map(|h| (h.id.as_str(), h.distance, h.score))
        .collect();
    assert_eq!(
        got,
        vec![("r0", -7.0, 7.0), ("r2", -2.0, 2.0), ("r1", -1.0, 1.0)]
    );

    let l2 = build(Metric::L2, 2, &data, ids(3, "r")).unwrap();
    let hits = l2.search(&[0.0, 0.0], 3).unwrap();
    let got: Vec<(&str, f32, f32)> = hits
        .iter()
        .map(|h| (h.id.as_str(), h.distance, h.score))
        .collect();
    assert_eq!(
        got,
        vec![("r1", 1.0, -1.0), ("r2", 2.0, -2.0), ("r0", 5.0, -5.0)]
    );
}

#[test]
fn k_edge_cases() {
    let (index, data) = small_index(Metric::L2, 100, 4);
    let q = &data[..4];
    assert!(index.search(q, 0).unwrap().is_empty());
    assert_eq!(
        index.search(q, 500).unwrap().len(),
        100,
        "k beyond the count returns everything"
    );
    // k > ef_search is answered exactly.
    assert_eq!(
        index.search(q, 60).unwrap(),
        index.search_exact(q, 60).unwrap()
    );
    // The query's own vector comes first.
    assert_eq!(index.search(q, 1).unwrap()[0].id, "doc0");
}

#[test]
fn batch_search_equals_single_searches() {
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
        let (index, _) = small_index(metric, 300, 6);
        let queries = clustered(40, 6, 5, 9);
        let batch = index.search_batch(&queries, 7).unwrap();
        let exact_batch = index.search_exact_batch(&queries, 7).unwrap();
        for (i, q) in queries.chunks(6).enumerate() {
            assert_eq!(batch[i], index.search(q, 7).unwrap(), "{metric} query {i}");
            assert_eq!(
                exact_batch[i],
                index.search_exact(q, 7).unwrap(),
                "{metric} query {i}"
            );
        }
    }
}

#[test]
fn exact_index_matches_exact_search_and_brute_force() {
    let data = clustered(700, 5, 0, 11);
    let index = Index::build(
        "e",
        5,
        Metric::L2,
        BuildParams {
            exact: true,
            ..Default::default()
        },
        &data,
        ids(700, "p"),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(index.meta().indexed, 0);
    let q = clustered(1, 5, 3, 11);
    let hits = index.search(&q, 12).unwrap();
    let mut brute: Vec<(f64, usize)> = data
        .chunks(5)
        .enumerate()
        .map(|(i, x)| {
            (
                x.iter()
                    .zip(&q)
                    .map(|(a, b)| ((a - b) as f64).powi(2))
                    .sum::<f64>(),
                i,
            )
        })
        .collect();
    brute.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for (h, (d2, i)) in hits.iter().zip(&brute) {
        assert_eq!(h.id, format!("p{i}"));
        assert!((h.distance as f64 - d2.sqrt()).abs() < 1e-4);
    }
}

#[test]
fn add_finds_new_items_and_never_duplicates() {
    for exact in [false, true] {
        let data = clustered(400, 8, 0, 1);
        let mut index = Index::build(
            "e",
            8,
            Metric::Cosine,
            BuildParams {
                exact,
                ..Default::default()
            },
            &data,
            ids(400, "old"),
            Vec::new(),
        )
        .unwrap();
        // Small additions go to the exact tail and are found at once.
        let fresh = clustered(10, 8, 9, 1);
        let report = index
            .add(&fresh, ids(10, "new"), vec![json!({"n": 1}); 10])
            .unwrap();
        assert_eq!((report.added, report.skipped_existing), (10, 0));
        assert_eq!(index.len(), 410);
        for (i, q) in fresh.chunks(8).enumerate() {
            let hits = index.search(q, 3).unwrap();
            assert_eq!(hits[0].id, format!("new{i}"), "exact={exact}");
            assert_eq!(hits[0].metadata, json!({"n": 1}));
        }
        // Re-adding the same ids (with other vectors) skips them.
        let report = index.add(&data[..80], ids(10, "new"), vec![]).unwrap();
        assert_eq!((report.added, report.skipped_existing), (0, 10));
        assert_eq!(index.len(), 410);
        let report = index
            .add(&data[..16], vec!["old3".into(), "brand-new".into()], vec![])
            .unwrap();
        assert_eq!((report.added, report.skipped_existing), (1, 1));
        // Duplicates within one call are an error and change nothing.
        let err = index
            .add(&data[..16], vec!["x".into(), "x".into()], vec![])
            .unwrap_err();
        assert!(matches!(err, VectorError::DuplicateId(_)));
        assert_eq!(index.len(), 411);
        // A large addition triggers a rebuild; everything is still found exactly once.
        let many = clustered(1500, 8, 10, 1);
        let report = index.add(&many, ids(1500, "bulk"), vec![]).unwrap();
        assert_eq!(report.added, 1500);
        if !exact {
            assert_eq!(
                index.meta().indexed,
                index.len(),
                "the tail was folded into the graph"
            );
        }
        let total = index.len();
        assert_eq!(total, 1911);
        let mut seen = std::collections::HashSet::new();
        for id in index.ids() {
            assert!(seen.insert(id.clone()), "duplicate {id}");
        }
        for (i, q) in many.chunks(8).enumerate().step_by(97) {
            let hits = index.search(q, 5).unwrap();
            assert_eq!(hits[0].id, format!("bulk{i}"));
            let ids: std::collections::HashSet<_> = hits.iter().map(|h| &h.id).collect();
            assert_eq!(ids.len(), hits.len(), "no duplicate hits");
        }
        index.compact().unwrap();
        assert_eq!(index.len(), 1911);
    }
}

#[test]
fn metric_names_parse_and_print() {
    for (s, m) in [
        ("cosine", Metric::Cosine),
        ("dot", Metric::Dot),
        ("l2", Metric::L2),
        ("L2", Metric::L2),
    ] {
        assert_eq!(s.parse::<Metric>().unwrap(), m);
    }
    assert_eq!(Metric::Cosine.to_string(), "cosine");
    assert_eq!(Metric::Dot.to_string(), "dot");
    assert_eq!(Metric::L2.to_string(), "l2");
    let err = "hamming".parse::<Metric>().unwrap_err();
    assert!(err.to_string().contains("hamming"));
    assert_eq!(serde_json::to_string(&Metric::L2).unwrap(), "\"l2\"");
}

#[test]
fn meta_serializes() {
    let (index, _) = small_index(Metric::Dot, 30, 3);
    let v = serde_json::to_value(index.meta()).unwrap();
    assert_eq!(v["embedder"], "test-embedder");
    assert_eq!(v["dim"], 3);
    assert_eq!(v["count"], 30);
    assert_eq!(v["metric"], "dot");
    assert_eq!(v["params"]["ef_search"], 32);
    assert_eq!(v["format_version"], 1);
}

#[test]
fn index_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Index>();
}
