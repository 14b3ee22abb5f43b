//! Index files: round trips, and every kind of damage is an error (never a panic, never a huge
//! allocation).

mod common;

use std::path::Path;

use common::*;
use mlp_vector::{BuildParams, Index, Metric, VectorError};

const FIXED: usize = 64;

fn saved(index: &Index) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.mlpv");
    index.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (dir, path, bytes)
}

fn load_bytes(dir: &Path, bytes: &[u8]) -> Result<Index, VectorError> {
    let p = dir.join("damaged.mlpv");
    std::fs::write(&p, bytes).unwrap();
    Index::load(&p)
}

/// Re-seals a modified file (so that only the deeper checks can catch it).
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len();
    let h = blake3::hash(&bytes[..n - 32]);
    bytes[n - 32..].copy_from_slice(h.as_bytes());
}

fn assert_same_results(a: &Index, b: &Index, queries: &[f32], k: usize) {
    let dim = a.meta().dim;
    for q in queries.chunks(dim) {
        assert_eq!(a.search(q, k).unwrap(), b.search(q, k).unwrap());
        assert_eq!(a.search_exact(q, k).unwrap(), b.search_exact(q, k).unwrap());
    }
    assert_eq!(
        a.search_batch(queries, k).unwrap(),
        b.search_batch(queries, k).unwrap()
    );
}

#[test]
fn round_trip_gives_identical_results_for_every_metric() {
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
        let (index, _) = small_index(metric, 400, 8);
        let (_d, path, _) = saved(&index);
        let loaded = Index::load(&path).unwrap();
        assert_eq!(loaded.meta(), index.meta());
        assert_eq!(loaded.ids(), index.ids());
        let queries = clustered(30, 8, 1, 7);
        assert_same_results(&index, &loaded, &queries, 10);
        let hit = &loaded.search(&queries[..8], 1).unwrap()[0];
        assert!(
            hit.metadata.get("i").is_some(),
            "metadata survives: {hit:?}"
        );
        // Saving again gives the same bytes.
        let (_d2, _, again) = saved(&loaded);
        assert_eq!(again, std::fs::read(&path).unwrap());
    }
}

#[test]
fn round_trip_of_exact_empty_and_tail_indexes() {
    let data = clustered(50, 4, 0, 3);
    let exact = Index::build(
        "e",
        4,
        Metric::L2,
        BuildParams {
            exact: true,
            ..Default::default()
        },
        &data,
        ids(50, "x"),
        Vec::new(),
    )
    .unwrap();
    let (_d, path, _) = saved(&exact);
    let loaded = Index::load(&path).unwrap();
    assert_eq!(loaded.meta(), exact.meta());
    assert_same_results(&exact, &loaded, &data[..40], 5);

    let empty = Index::build(
        "e",
        4,
        Metric::Cosine,
        BuildParams::default(),
        &[],
        vec![],
        vec![],
    )
    .unwrap();
    let (_d, path, _) = saved(&empty);
    let loaded = Index::load(&path).unwrap();
    assert!(loaded.is_empty());
    assert!(loaded.search(&[1.0, 0.0, 0.0, 0.0], 3).unwrap().is_empty());

    let (mut with_tail, _) = small_index(Metric::Cosine, 300, 4);
    let extra = clustered(20, 4, 2, 3);
    with_tail.add(&extra, ids(20, "new"), vec![]).unwrap();
    assert!(
        with_tail.meta().indexed < with_tail.len(),
        "the additions stay in the tail"
    );
    let (_d, path, _) = saved(&with_tail);
    let loaded = Index::load(&path).unwrap();
    assert_eq!(loaded.meta(), with_tail.meta());
    assert_same_results(&with_tail, &loaded, &extra, 5);
}

#[test]
fn every_corrupted_byte_is_detected() {
    let (index, _) = small_index(Metric::Cosine, 60, 4);
    let (d, _path, bytes) = saved(&index);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x40;
        let err = load_bytes(d.path(), &b).expect_err("a flipped byte must be detected");
        match i {
            0..=7 => assert!(
                matches!(err, VectorError::BadMagic { .. }),
                "byte {i}: {err}"
            ),
            // The file length field: a larger declared length reads as truncation.
            16..=23 => assert!(
                matches!(
                    err,
                    VectorError::Checksum { .. } | VectorError::Truncated { .. }
                ),
                "byte {i}: {err}"
            ),
            _ => assert!(
                matches!(err, VectorError::Checksum { .. }),
                "byte {i}: {err}"
            ),
        }
    }
}

#[test]
fn truncated_files_are_errors() {
    let (index, _) = small_index(Metric::L2, 60, 4);
    let (d, _path, bytes) = saved(&index);
    for len in [
        0,
        3,
        8,
        20,
        63,
        64,
        95,
        96,
        bytes.len() / 2,
        bytes.len() - 33,
        bytes.len() - 1,
    ] {
        let err = load_bytes(d.path(), &bytes[..len]).expect_err("truncated");
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                VectorError::BadMagic { .. } | VectorError::Truncated { .. }
            ),
            "length {len}: {msg}"
        );
        if len >= 8 {
            assert!(msg.contains("truncated"), "{msg}");
        }
    }
    // Extra bytes at the end are caught too.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 5]);
    assert!(load_bytes(d.path(), &longer).is_err());
}

#[test]
fn unknown_version_is_refused_by_name() {
    let (index, _) = small_index(Metric::Dot, 30, 4);
    let (d, _path, mut bytes) = saved(&index);
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    reseal(&mut bytes);
    let err = load_bytes(d.path(), &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            VectorError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn not_an_index_file() {
    let d = tempfile::tempdir().unwrap();
    let err = load_bytes(
        d.path(),
        b"PK\x03\x04 this is a zip file, not an index at all........",
    )
    .unwrap_err();
    assert!(matches!(err, VectorError::BadMagic { .. }), "{err}");
    let missing = Index::load(&d.path().join("nope.mlpv")).unwrap_err();
    assert!(matches!(missing, VectorError::Io { .. }), "{missing}");
    assert!(missing.to_string().contains("nope.mlpv"));
}

/// Finds the JSON header and lets `f` rewrite it, keeping the section table consistent.
fn edit_header(bytes: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let hlen = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    let mut header: serde_json::Value =
        serde_json::from_slice(&bytes[FIXED..FIXED + hlen]).unwrap();
    f(&mut header);
    let new = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..FIXED].to_vec();
    out[24..32].copy_from_slice(&(new.len() as u64).to_le_bytes());
    out.extend_from_slice(&new);
    out.extend_from_slice(&bytes[FIXED + hlen..]);
    let total = out.len() as u64;
    out[16..24].copy_from_slice(&total.to_le_bytes());
    reseal(&mut out);
    out
}

#[test]
fn inconsistent_headers_are_errors_without_huge_allocations() {
    let (index, _) = small_index(Metric::Cosine, 50, 4);
    let (d, _path, bytes) = saved(&index);
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "huge count",
            Box::new(|h| h["meta"]["count"] = serde_json::json!(1u64 << 60)),
        ),
        (
            "count off by one",
            Box::new(|h| h["meta"]["count"] = serde_json::json!(49)),
        ),
        (
            "huge dim",
            Box::new(|h| h["meta"]["dim"] = serde_json::json!(u64::MAX)),
        ),
        (
            "dim 0",
            Box::new(|h| h["meta"]["dim"] = serde_json::json!(0)),
        ),
        (
            "indexed > count",
            Box::new(|h| h["meta"]["indexed"] = serde_json::json!(51)),
        ),
        (
            "huge layer",
            Box::new(|h| h["graph_layers"] = serde_json::json!([1u64 << 62])),
        ),
        (
            "unknown metric",
            Box::new(|h| h["meta"]["metric"] = serde_json::json!("hamming")),
        ),
        (
            "unknown field",
            Box::new(|h| h["extra"] = serde_json::json!(1)),
        ),
        (
            "version disagrees",
            Box::new(|h| h["meta"]["format_version"] = serde_json::json!(7)),
        ),
        ("not json", Box::new(|h| *h = serde_json::json!("x"))),
    ];
    for (what, f) in cases {
        let b = edit_header(&bytes, f);
        let err = load_bytes(d.path(), &b).expect_err(what);
        assert!(matches!(err, VectorError::Corrupt { .. }), "{what}: {err}");
    }
    // Section lengths that do not add up.
    let mut b = bytes.clone();
    let ids_len = u64::from_le_bytes(b[32..40].try_into().unwrap());
    b[32..40].copy_from_slice(&(ids_len + 1).to_le_bytes());
    b[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut b);
    let err = load_bytes(d.path(), &b).unwrap_err();
    assert!(matches!(err, VectorError::Corrupt { .. }), "{err}");
}

#[test]
fn bad_graph_links_and_ids_are_errors() {
    let (index, _) = small_index(Metric::L2, 80, 4);
    let (d, _path, bytes) = saved(&index);
    let len_at =
        |i: usize| u64::from_le_bytes(bytes[24 + 8 * i..32 + 8 * i].try_into().unwrap()) as usize;
    let (h, ids, md, vecs) = (len_at(0), len_at(1), len_at(2), len_at(3));
    let graph_start = FIXED + h + ids + md + vecs;
    // A neighbour out of range (first layer-0 slot of point 0).
    let mut b = bytes.clone();
    let slot = graph_start + 80 * 4;
    b[slot..slot + 4].copy_from_slice(&1000u32.to_le_bytes());
    reseal(&mut b);
    let err = load_bytes(d.path(), &b).unwrap_err();
    assert!(err.to_string().contains("links to point 1000"), "{err}");
    // A point order that is not a permutation.
    let mut b = bytes.clone();
    b.copy_within(graph_start + 4..graph_start + 8, graph_start);
    reseal(&mut b);
    let err = load_bytes(d.path(), &b).unwrap_err();
    assert!(err.to_string().contains("permutation"), "{err}");
    // An id length running past its section.
    let mut b = bytes.clone();
    b[FIXED + h..FIXED + h + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut b);
    let err = load_bytes(d.path(), &b).unwrap_err();
    assert!(matches!(err, VectorError::Corrupt { .. }), "{err}");
    // A non-finite vector value.
    let mut b = bytes.clone();
    let v = FIXED + h + ids + md;
    b[v..v + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut b);
    let err = load_bytes(d.path(), &b).unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
    // Duplicate ids (make id 1 equal to id 0: both are "doc0"/"doc1", same length).
    let mut b = bytes.clone();
    let id0 = FIXED + h + 4;
    let id1 = id0 + 4 + 4;
    b[id1..id1 + 4].copy_from_slice(b"doc0");
    reseal(&mut b);
    let err = load_bytes(d.path(), &b).unwrap_err();
    assert!(err.to_string().contains("duplicate id"), "{err}");
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_files() {
    let (index, _) = small_index(Metric::Cosine, 40, 4);
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("i.mlpv");
    std::fs::write(&path, b"old contents").unwrap();
    index.save(&path).unwrap();
    assert!(Index::load(&path).is_ok());
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // Saving into a missing directory is an I/O error naming the file.
    let err = index.save(&d.path().join("missing/i.mlpv")).unwrap_err();
    assert!(
        matches!(err, VectorError::Io { .. }) && err.to_string().contains("i.mlpv"),
        "{err}"
    );
}
