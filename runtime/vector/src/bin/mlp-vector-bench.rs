//! Benchmark of the vector index: build time, queries per second (one thread and all threads)
//! and recall@k against exact search, on deterministic synthetic embeddings or `.npy` files.
//!
//! ```text
//! mlp-vector-bench [--n 100000] [--dim 384] [--queries 1000] [--k 10] [--metric cosine]
//!                  [--ef-construction 100] [--ef-search 64[,128,...]] [--seed 0]
//!                  [--vectors corpus.npy --query-vectors queries.npy]
//!                  [--dump DIR] [--save FILE | --load FILE] [--repeat 3] [--json]
//! ```
//! `--load FILE` skips the build and uses a saved index of the same data (for profiling).
//! Query timings are the best of `--repeat` runs (the machine may be shared).
//! Synthetic data (see `mlp_vector::synth`) can be shaped with `--latent L` (intrinsic
//! dimension, default 64), `--clusters C` (64) and `--noise X` (0.05).
//! `--dump DIR` writes the corpus and the queries as `DIR/vectors.npy` and `DIR/queries.npy`
//! (for `bench/vs_hnswlib.py`). `--ef-search` takes a comma-separated list to sweep.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use mlp_vector::{npy, simd, synth, BuildParams, Hit, Index, Metric};
use serde_json::json;

struct Args {
    n: usize,
    dim: usize,
    queries: usize,
    k: usize,
    metric: Metric,
    ef_construction: usize,
    ef_search: Vec<usize>,
    seed: u64,
    vectors: Option<PathBuf>,
    query_vectors: Option<PathBuf>,
    dump: Option<PathBuf>,
    save: Option<PathBuf>,
    load: Option<PathBuf>,
    repeat: usize,
    latent: Option<usize>,
    clusters: Option<usize>,
    noise: Option<f32>,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let d = BuildParams::default();
    let mut a = Args {
        n: 100_000,
        dim: 384,
        queries: 1000,
        k: 10,
        metric: Metric::Cosine,
        ef_construction: d.ef_construction,
        ef_search: vec![d.ef_search],
        seed: 0,
        vectors: None,
        query_vectors: None,
        dump: None,
        save: None,
        load: None,
        repeat: 3,
        latent: None,
        clusters: None,
        noise: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            a.json = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--n" => a.n = num(&v)?,
            "--dim" => a.dim = num(&v)?,
            "--queries" => a.queries = num(&v)?,
            "--k" => a.k = num(&v)?,
            "--metric" => a.metric = v.parse().map_err(|e| format!("{e}"))?,
            "--ef-construction" => a.ef_construction = num(&v)?,
            "--ef-search" => {
                a.ef_search = v
                    .split(',')
                    .map(|s| num(s.trim()))
                    .collect::<Result<_, _>>()?
            }
            "--seed" => a.seed = num(&v)? as u64,
            "--vectors" => a.vectors = Some(v.into()),
            "--query-vectors" => a.query_vectors = Some(v.into()),
            "--dump" => a.dump = Some(v.into()),
            "--save" => a.save = Some(v.into()),
            "--load" => a.load = Some(v.into()),
            "--repeat" => a.repeat = num(&v)?.max(1),
            "--latent" => a.latent = Some(num(&v)?),
            "--clusters" => a.clusters = Some(num(&v)?),
            "--noise" => {
                a.noise = Some(
                    v.parse()
                        .map_err(|_| format!("--noise: `{v}` is not a number"))?,
                )
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.vectors.is_some() != a.query_vectors.is_some() {
        return Err("--vectors and --query-vectors go together".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!(
                "usage: mlp-vector-bench [--n N] [--dim D] [--queries Q] [--k K] [--metric cosine|dot|l2] \
                 [--ef-construction E] [--ef-search E[,E...]] [--seed S] [--latent L] [--clusters C] [--noise X] [--vectors F.npy --query-vectors F.npy] \
                 [--dump DIR] [--save FILE | --load FILE] [--repeat N] [--json]"
            );
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn log(json: bool, msg: &str) {
    if !json {
        eprintln!("{msg}");
    }
}

fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let (data, queries, n, dim, nq, source) = match (&a.vectors, &a.query_vectors) {
        (Some(v), Some(q)) => {
            let (data, n, dim) = npy::read_f32_matrix(v)?;
            let (queries, nq, qd) = npy::read_f32_matrix(q)?;
            if qd != dim {
                return Err(format!("queries have dimension {qd}, vectors {dim}").into());
            }
            (
                data,
                queries,
                n,
                dim,
                nq,
                format!("{} + {}", v.display(), q.display()),
            )
        }
        _ => {
            let mut spec = synth::Spec::new(a.dim, a.seed);
            spec.latent = a.latent.unwrap_or(spec.latent);
            spec.clusters = a.clusters.unwrap_or(spec.clusters);
            spec.noise = a.noise.unwrap_or(spec.noise);
            let data = synth::clustered(&spec, a.n, 0);
            let queries = synth::clustered(&spec, a.queries, 1);
            (
                data,
                queries,
                a.n,
                a.dim,
                a.queries,
                format!("synthetic {spec:?}"),
            )
        }
    };
    log(
        a.json,
        &format!(
            "data: {n} x {dim}, {nq} queries ({source}) in {:.1}s",
            t.elapsed().as_secs_f64()
        ),
    );
    if let Some(dir) = &a.dump {
        std::fs::create_dir_all(dir)?;
        npy::write_f32_matrix(&dir.join("vectors.npy"), &data, n, dim)?;
        npy::write_f32_matrix(&dir.join("queries.npy"), &queries, nq, dim)?;
        log(
            a.json,
            &format!("wrote {}/vectors.npy and queries.npy", dir.display()),
        );
    }
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let params = BuildParams {
        ef_construction: a.ef_construction,
        ef_search: a.ef_search[0],
        seed: a.seed,
        exact: false,
    };
    let t = Instant::now();
    let mut index = match &a.load {
        Some(path) => {
            let index = Index::load(path)?;
            if index.len() != n || index.meta().dim != dim || index.meta().metric != a.metric {
                return Err(
                    format!("{} does not hold this data set and metric", path.display()).into(),
                );
            }
            index
        }
        None => Index::build("bench", dim, a.metric, params, &data, ids, Vec::new())?,
    };
    let build_s = t.elapsed().as_secs_f64();
    log(
        a.json,
        &format!(
            "{}: {build_s:.2}s (ef_construction {}, M {})",
            if a.load.is_some() { "load" } else { "build" },
            index.meta().params.ef_construction,
            mlp_vector::HNSW_M
        ),
    );
    drop(data);

    let mut save_info = serde_json::Value::Null;
    if let Some(path) = &a.save {
        let t = Instant::now();
        index.save(path)?;
        let save_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let loaded = Index::load(path)?;
        let load_s = t.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(path)?.len();
        log(
            a.json,
            &format!("save {save_s:.2}s, load {load_s:.2}s, {bytes} bytes"),
        );
        save_info = json!({"save_seconds": save_s, "load_seconds": load_s, "bytes": bytes});
        index = loaded;
    }

    let t = Instant::now();
    let truth = index.search_exact_batch(&queries, a.k)?;
    let exact_s = t.elapsed().as_secs_f64();
    log(
        a.json,
        &format!(
            "exact (batched, all threads): {:.0} QPS",
            nq as f64 / exact_s
        ),
    );

    let mut rows = Vec::new();
    for &ef in &a.ef_search {
        index.set_ef_search(ef)?;
        // One thread: queries one after another on this thread. Each measurement is repeated
        // and the fastest kept (the machine may be shared).
        let mut st = f64::INFINITY;
        let mut single = Vec::new();
        for _ in 0..a.repeat {
            let t = Instant::now();
            single = Vec::with_capacity(nq);
            for q in queries.chunks_exact(dim) {
                single.push(index.search(q, a.k)?);
            }
            st = st.min(t.elapsed().as_secs_f64());
        }
        let mut mt = f64::INFINITY;
        let mut multi = Vec::new();
        for _ in 0..a.repeat {
            let t = Instant::now();
            multi = index.search_batch(&queries, a.k)?;
            mt = mt.min(t.elapsed().as_secs_f64());
        }
        let recall = recall_at(&single, &truth, a.k);
        let recall_multi = recall_at(&multi, &truth, a.k);
        let row = json!({
            "ef_search": ef,
            "recall": recall,
            "recall_batch": recall_multi,
            "qps_single": nq as f64 / st,
            "qps_multi": nq as f64 / mt,
            "us_per_query_single": st * 1e6 / nq as f64,
        });
        log(
            a.json,
            &format!(
                "ef_search {ef:>4}: recall@{} {recall:.4}  QPS 1 thread {:>8.0}  QPS {} threads {:>8.0}",
                a.k,
                nq as f64 / st,
                rayon::current_num_threads(),
                nq as f64 / mt
            ),
        );
        rows.push(row);
    }
    let report = json!({
        "n": n, "dim": dim, "queries": nq, "k": a.k, "metric": a.metric.name(),
        "ef_construction": a.ef_construction, "hnsw_m": mlp_vector::HNSW_M,
        "seed": a.seed, "source": source, "kernel": simd::kernel_name(),
        "threads": rayon::current_num_threads(),
        "build_seconds": build_s,
        "exact_qps_batch": nq as f64 / exact_s,
        "file": save_info,
        "results": rows,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn recall_at(got: &[Vec<Hit>], truth: &[Vec<Hit>], k: usize) -> f64 {
    let mut sum = 0.0;
    for (g, t) in got.iter().zip(truth) {
        let want: HashSet<&str> = t.iter().take(k).map(|h| h.id.as_str()).collect();
        let found = g
            .iter()
            .take(k)
            .filter(|h| want.contains(h.id.as_str()))
            .count();
        sum += found as f64 / want.len().max(1) as f64;
    }
    sum / got.len().max(1) as f64
}
