//! Retrieval metrics on hand-computed cases, and qrels parsing.

use mlp_vector::metrics::{evaluate, Qrels, Run};
use mlp_vector::VectorError;

fn run(entries: &[(&str, &[(&str, f64)])]) -> Run {
    entries
        .iter()
        .map(|(q, docs)| {
            (
                q.to_string(),
                docs.iter().map(|(d, s)| (d.to_string(), *s)).collect(),
            )
        })
        .collect()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn hand_computed_single_query() {
    // Judgments: d1 = 3, d2 = 0 (judged non-relevant), d3 = 1, d4 = 2. R = 3.
    let mut q = Qrels::new();
    q.insert("q", "d1", 3);
    q.insert("q", "d2", 0);
    q.insert("q", "d3", 1);
    q.insert("q", "d4", 2);
    // Ranking by score: x (unjudged), d3, d2, d1, d4.
    let r = run(&[(
        "q",
        &[
            ("d1", 0.4),
            ("d3", 0.8),
            ("x", 0.9),
            ("d2", 0.5),
            ("d4", 0.1),
        ],
    )]);

    let rep = evaluate(&r, &q, 3);
    assert_eq!(rep.queries, 1);
    // Top 3: x, d3, d2 -> one relevant (d3) of 3.
    close(rep.recall, 1.0 / 3.0);
    close(rep.mrr, 0.5);
    // DCG@3 = 1/log2(3); IDCG@3 = 3/1 + 2/log2(3) + 1/2.
    let dcg = 1.0 / 3f64.log2();
    let idcg = 3.0 + 2.0 / 3f64.log2() + 0.5;
    close(rep.ndcg, dcg / idcg);

    let rep = evaluate(&r, &q, 5);
    close(rep.recall, 1.0);
    close(rep.mrr, 0.5);
    // DCG@5 = 1/log2(3) + 3/log2(5) + 2/log2(6).
    let dcg = 1.0 / 3f64.log2() + 3.0 / 5f64.log2() + 2.0 / 6f64.log2();
    close(rep.ndcg, dcg / idcg);

    // k = 0: no cut (same as 5 here).
    let rep0 = evaluate(&r, &q, 0);
    close(rep0.ndcg, rep.ndcg);
}

#[test]
fn perfect_and_empty_runs() {
    let mut q = Qrels::new();
    q.insert("a", "x", 1);
    q.insert("a", "y", 2);
    let perfect = run(&[("a", &[("y", 2.0), ("x", 1.0)])]);
    let rep = evaluate(&perfect, &q, 10);
    close(rep.recall, 1.0);
    close(rep.mrr, 1.0);
    close(rep.ndcg, 1.0);

    let swapped = run(&[("a", &[("x", 2.0), ("y", 1.0)])]);
    let rep = evaluate(&swapped, &q, 10);
    close(rep.recall, 1.0);
    close(rep.mrr, 1.0);
    close(
        rep.ndcg,
        (1.0 + 2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2()),
    );

    let rep = evaluate(&Run::new(), &q, 10);
    assert_eq!(
        rep.queries, 1,
        "a judged query missing from the run counts, as 0"
    );
    close(rep.recall, 0.0);
    close(rep.ndcg, 0.0);
}

#[test]
fn which_queries_are_averaged() {
    let mut q = Qrels::new();
    q.insert("has-rel", "d", 1);
    q.insert("only-zero", "d", 0);
    q.insert("negative", "d", -1);
    q.insert("missing-from-run", "d", 1);
    let r = run(&[
        ("has-rel", &[("d", 1.0)]),
        ("only-zero", &[("d", 1.0)]),
        ("not-in-qrels", &[("d", 1.0)]),
    ]);
    let rep = evaluate(&r, &q, 10);
    assert_eq!(rep.queries, 2);
    let qids: Vec<&str> = rep.per_query.iter().map(|s| s.qid.as_str()).collect();
    assert_eq!(qids, ["has-rel", "missing-from-run"]);
    close(rep.recall, 0.5);
    close(rep.mrr, 0.5);
    close(rep.ndcg, 0.5);
    // No judged query at all.
    let rep = evaluate(&r, &Qrels::new(), 10);
    assert_eq!(rep.queries, 0);
    close(rep.recall, 0.0);
}

#[test]
fn ties_duplicates_and_nan() {
    let mut q = Qrels::new();
    q.insert("q", "b", 1);
    // Equal scores keep the given order: a before b.
    let r = run(&[("q", &[("a", 1.0), ("b", 1.0)])]);
    close(evaluate(&r, &q, 10).mrr, 0.5);
    // A duplicate counts once, at its best position: ranking a, b (not a, a, b).
    let r = run(&[("q", &[("a", 3.0), ("a", 2.0), ("b", 1.0)])]);
    let rep = evaluate(&r, &q, 2);
    close(rep.mrr, 0.5);
    close(rep.recall, 1.0);
    // NaN ranks last.
    let r = run(&[("q", &[("b", f64::NAN), ("a", 0.0)])]);
    close(evaluate(&r, &q, 10).mrr, 0.5);
}

#[test]
fn report_serializes() {
    let mut q = Qrels::new();
    q.insert("q", "d", 1);
    let rep = evaluate(&run(&[("q", &[("d", 1.0)])]), &q, 5);
    let v = serde_json::to_value(&rep).unwrap();
    assert_eq!(v["k"], 5);
    assert_eq!(v["queries"], 1);
    assert_eq!(v["per_query"][0]["qid"], "q");
    assert_eq!(v["ndcg"], 1.0);
}

#[test]
fn parse_trec_beir_and_three_column() {
    let trec = "q1 0 d1 1\nq1 0 d2 0\n\n# comment\nq2\tQ0\td3\t2\n";
    let q = Qrels::parse_trec(trec).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q.get("q1").unwrap().get("d1"), Some(&1));
    assert_eq!(q.get("q2").unwrap().get("d3"), Some(&2));

    let beir = "query-id\tcorpus-id\tscore\nq1\tdoc-7\t1\nq1\tdoc-9\t2.0\n";
    let q = Qrels::parse_trec(beir).unwrap();
    assert_eq!(q.get("q1").unwrap().len(), 2);
    assert_eq!(q.get("q1").unwrap().get("doc-9"), Some(&2));

    let three = "a x 1\na y 0\n";
    assert_eq!(Qrels::parse_trec(three).unwrap().get("a").unwrap().len(), 2);

    // The last judgment of a pair wins.
    let q = Qrels::parse_trec("a 0 x 1\na 0 x 3\n").unwrap();
    assert_eq!(q.get("a").unwrap().get("x"), Some(&3));
}

#[test]
fn parse_errors_name_the_line() {
    for (text, line, what) in [
        ("q 0 d 1\nq d\n", 2, "fields"),
        ("q 0 d 1\nq 0 d x\n", 2, "not an integer"),
        ("a b c\n", 1, ""), // a header line alone is fine
        ("q 0 d 1.5\n", 1, "not an integer"),
        ("q 0 d 1 extra\n", 1, "fields"),
    ] {
        match Qrels::parse_trec(text) {
            Ok(q) => assert!(what.is_empty() && q.is_empty(), "{text:?}"),
            Err(VectorError::Qrels { line: l, msg }) => {
                assert_eq!(l, line, "{text:?}: {msg}");
                assert!(msg.contains(what), "{text:?}: {msg}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    // A non-numeric relevance is a header only on the first line of three fields.
    assert!(Qrels::parse_trec("q 0 d 1\nquery-id corpus-id score\n").is_err());
}
