//! Cross-check of `metrics::evaluate` against the Python `ranx` package on random runs.
//!
//! Needs `python3` with ranx (`pip install ranx==0.3.21`; `$PYTHON` picks another
//! interpreter). Without it the test is skipped with a message, except under `CI=true`, where it
//! fails.

use std::collections::BTreeMap;
use std::process::Command;

use mlp_vector::metrics::{evaluate, Qrels, Run};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn ranx_available() -> Result<(), String> {
    let out = Command::new(python())
        .args(["-c", "import ranx"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn metrics_agree_with_ranx() {
    if let Err(why) = ranx_available() {
        let msg = format!(
            "the Python package ranx is not importable ({why}); \
             install it with `pip install ranx==0.3.21`"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("ranx cross-check failed: {msg} (required under CI=true)");
        }
        eprintln!("ranx cross-check SKIPPED: {msg}");
        return;
    }

    let mut rng = Rng(20240611);
    let mut qrels = Qrels::new();
    let mut qrels_json: BTreeMap<String, BTreeMap<String, i32>> = BTreeMap::new();
    let mut run = Run::new();
    let mut run_json: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for q in 0..120 {
        let qid = format!("q{q}");
        let pool = 5 + rng.below(40); // documents d0..d{pool}
                                      // Judgments (some queries only have non-relevant ones, some none in the run).
        if q % 17 != 5 {
            let judged = 1 + rng.below(12);
            for _ in 0..judged {
                let doc = format!("d{}", rng.below(pool));
                let rel = if q % 13 == 3 { 0 } else { rng.below(4) as i32 };
                qrels.insert(&qid, &doc, rel);
                qrels_json.entry(qid.clone()).or_default().insert(doc, rel);
            }
        }
        if q % 11 != 7 {
            let retrieved = 1 + rng.below(pool);
            // Distinct scores so that the ranking has no ties (ranx leaves ties unspecified).
            let mut scores: Vec<u64> = (0..pool).collect();
            for i in (1..scores.len()).rev() {
                scores.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut docs: Vec<(String, f64)> = Vec::new();
            for (d, &score) in scores.iter().enumerate().take(retrieved as usize) {
                let s = score as f64 + 0.25 + (rng.below(1000) as f64) / 4000.0;
                docs.push((format!("d{d}"), s));
            }
            // Given in arbitrary order: evaluate must sort by score.
            for i in (1..docs.len()).rev() {
                docs.swap(i, rng.below(i as u64 + 1) as usize);
            }
            run_json.insert(qid.clone(), docs.iter().cloned().collect());
            run.insert(qid.clone(), docs);
        }
    }
    // Run queries that are not judged.
    run.insert("extra".into(), vec![("d1".into(), 1.0)]);
    run_json.insert(
        "extra".into(),
        [("d1".to_string(), 1.0)].into_iter().collect(),
    );

    let ks = [1usize, 3, 5, 10, 20, 0];
    let input = serde_json::json!({ "qrels": qrels_json, "run": run_json, "ks": ks });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.json");
    std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ranx_check.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ranx script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut compared = 0;
    for k in ks {
        let ours = evaluate(&run, &qrels, k);
        let theirs = &reference[k.to_string()];
        assert_eq!(
            ours.per_query.len(),
            theirs["recall"].as_object().unwrap().len(),
            "k={k}: same queries averaged"
        );
        assert!(
            ours.queries > 80,
            "most queries are judged: {}",
            ours.queries
        );
        let mut means = [0.0f64; 3];
        for s in &ours.per_query {
            for (i, (name, v)) in [("recall", s.recall), ("mrr", s.mrr), ("ndcg", s.ndcg)]
                .into_iter()
                .enumerate()
            {
                let r = theirs[name][&s.qid]
                    .as_f64()
                    .unwrap_or_else(|| panic!("ranx has no {name} for {}", s.qid));
                assert!(
                    (v - r).abs() < 1e-9,
                    "k={k} {} {name}: ours {v}, ranx {r}",
                    s.qid
                );
                means[i] += r;
                compared += 1;
            }
        }
        let n = ours.per_query.len() as f64;
        for (ours, r) in [ours.recall, ours.mrr, ours.ndcg].into_iter().zip(means) {
            assert!(
                (ours - r / n).abs() < 1e-9,
                "k={k}: mean {ours} vs {}",
                r / n
            );
        }
    }
    eprintln!("ranx cross-check: {compared} per-query values agree to 1e-9");
}
