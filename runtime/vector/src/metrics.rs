//! Retrieval metrics: recall, reciprocal rank and nDCG at a cut-off k, with the conventions of
//! [ranx](https://github.com/AmenRa/ranx) (`recall@k`, `mrr@k`, `ndcg@k`, `rel_lvl = 1`), which
//! are also trec_eval's for these measures (`recall_k`, `recip_rank` cut at k, `ndcg_cut_k`).
//!
//! Definitions, for one query with judgments `rel(d)` (integers; a document is *relevant* when
//! `rel(d) >= 1`, unjudged documents count as 0), `R` relevant documents and the run's ranking
//! `d_1, d_2, ...` cut at `k` (`k = 0` means no cut):
//!
//! * `recall@k = |{i <= k : rel(d_i) >= 1}| / R`
//! * `mrr@k = 1 / min{i <= k : rel(d_i) >= 1}`, or 0 when no relevant document is in the top k
//! * `ndcg@k = DCG@k / IDCG@k` with `DCG@k = Σ_{i<=k} g(d_i) / log2(i + 1)`, the linear gain
//!   `g(d) = rel(d)` when `rel(d) >= 1` and 0 otherwise (Järvelin & Kekäläinen; ranx `ndcg`,
//!   trec_eval `ndcg_cut`), and `IDCG@k` the same sum over the judgments sorted by decreasing
//!   relevance.
//!
//! The ranking of a query is its run entries sorted by decreasing score (a stable sort: equal
//! scores keep the order given; ranx leaves ties unspecified and trec_eval breaks them by
//! decreasing document id, so runs with ties may differ there). A document listed twice counts
//! once, at its best position. NaN scores rank last.
//!
//! The means are over the queries of the qrels that have at least one relevant document; such a
//! query missing from the run scores 0 on every measure; run queries absent from the qrels are
//! ignored. This is ranx's `evaluate(..., make_comparable=True)` on qrels restricted to queries
//! with a relevant document, and trec_eval's `-c` mean.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::error::{Result, VectorError};

/// Relevance judgments: query id → document id → graded relevance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Qrels {
    map: BTreeMap<String, BTreeMap<String, i32>>,
}

/// A run: query id → ranked `(document id, score)`, larger scores better.
pub type Run = BTreeMap<String, Vec<(String, f64)>>;

/// Scores of one query.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryScores {
    pub qid: String,
    pub recall: f64,
    pub mrr: f64,
    pub ndcg: f64,
    /// Relevant documents (`rel >= 1`) in the qrels.
    pub relevant: usize,
    /// Relevant documents found in the top k.
    pub hits: usize,
}

/// Mean scores at `k` and the per-query scores they average (sorted by query id).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub k: usize,
    pub recall: f64,
    pub mrr: f64,
    pub ndcg: f64,
    /// Number of queries averaged over (qrels queries with at least one relevant document).
    pub queries: usize,
    pub per_query: Vec<QueryScores>,
}

impl Qrels {
    pub fn new() -> Qrels {
        Qrels::default()
    }

    /// Parses qrels text. Accepted lines (fields separated by spaces or tabs; empty lines and
    /// lines starting with `#` are skipped):
    /// * TREC: `qid iter docid rel` (the second field is ignored);
    /// * three columns: `qid docid rel` (BEIR's `.tsv`), optionally after a header line whose
    ///   last field is not a number (`query-id corpus-id score`).
    ///
    /// `rel` is an integer (`2` or `2.0`). A pair judged twice keeps the last judgment.
    pub fn parse_trec(text: &str) -> Result<Qrels> {
        let mut q = Qrels::new();
        let mut first = true;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let is_first = std::mem::replace(&mut first, false);
            let (qid, docid, rel) = match fields.as_slice() {
                [q, d, r] => (*q, *d, *r),
                [q, _, d, r] => (*q, *d, *r),
                _ => {
                    return Err(VectorError::Qrels {
                        line: line_no,
                        msg: format!(
                            "expected `qid 0 docid rel` or `qid docid rel`, found {} fields",
                            fields.len()
                        ),
                    })
                }
            };
            let rel = match parse_rel(rel) {
                Some(r) => r,
                None if is_first && fields.len() == 3 => continue, // a header line
                None => {
                    return Err(VectorError::Qrels {
                        line: line_no,
                        msg: format!("relevance `{rel}` is not an integer"),
                    })
                }
            };
            q.insert(qid, docid, rel);
        }
        Ok(q)
    }

    /// Sets the relevance of `docid` for `qid`.
    pub fn insert(&mut self, qid: &str, docid: &str, rel: i32) {
        self.map
            .entry(qid.to_string())
            .or_default()
            .insert(docid.to_string(), rel);
    }

    /// The judgments of `qid`.
    pub fn get(&self, qid: &str) -> Option<&BTreeMap<String, i32>> {
        self.map.get(qid)
    }

    /// Queries and their judgments, by query id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &BTreeMap<String, i32>)> {
        self.map.iter()
    }

    /// Number of judged queries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn parse_rel(s: &str) -> Option<i32> {
    if let Ok(r) = s.parse::<i32>() {
        return Some(r);
    }
    let f = s.parse::<f64>().ok()?;
    (f.fract() == 0.0 && f.abs() <= i32::MAX as f64).then_some(f as i32)
}

/// Evaluates `run` against `qrels` at cut-off `k` (`0` = no cut). See the module
/// documentation for the exact definitions.
pub fn evaluate(run: &Run, qrels: &Qrels, k: usize) -> Report {
    let empty = Vec::new();
    let mut per_query = Vec::new();
    for (qid, judged) in &qrels.map {
        let relevant = judged.values().filter(|&&r| r >= 1).count();
        if relevant == 0 {
            continue;
        }
        let ranking = ranked(run.get(qid).unwrap_or(&empty));
        let cut = if k == 0 {
            ranking.len()
        } else {
            k.min(ranking.len())
        };
        let mut hits = 0usize;
        let mut first = None;
        let mut dcg = 0.0f64;
        for (i, d) in ranking[..cut].iter().enumerate() {
            let rel = judged.get(*d).copied().unwrap_or(0);
            if rel >= 1 {
                hits += 1;
                first.get_or_insert(i + 1);
                dcg += rel as f64 / ((i + 2) as f64).log2();
            }
        }
        let mut ideal: Vec<i32> = judged.values().copied().filter(|&r| r >= 1).collect();
        ideal.sort_unstable_by(|a, b| b.cmp(a));
        let icut = if k == 0 {
            ideal.len()
        } else {
            k.min(ideal.len())
        };
        let idcg: f64 = ideal[..icut]
            .iter()
            .enumerate()
            .map(|(i, &r)| r as f64 / ((i + 2) as f64).log2())
            .sum();
        per_query.push(QueryScores {
            qid: qid.clone(),
            recall: hits as f64 / relevant as f64,
            mrr: first.map_or(0.0, |r| 1.0 / r as f64),
            ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
            relevant,
            hits,
        });
    }
    let n = per_query.len();
    let mean = |f: fn(&QueryScores) -> f64| {
        if n == 0 {
            0.0
        } else {
            per_query.iter().map(f).sum::<f64>() / n as f64
        }
    };
    Report {
        k,
        recall: mean(|q| q.recall),
        mrr: mean(|q| q.mrr),
        ndcg: mean(|q| q.ndcg),
        queries: n,
        per_query,
    }
}

/// Document ids by decreasing score (stable; NaN last; duplicates keep their best position).
fn ranked(entries: &[(String, f64)]) -> Vec<&str> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (entries[a].1, entries[b].1);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
        }
    });
    let mut seen = HashSet::with_capacity(entries.len());
    order
        .into_iter()
        .map(|i| entries[i].0.as_str())
        .filter(|d| seen.insert(*d))
        .collect()
}
