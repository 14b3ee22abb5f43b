//! Retrieval commands: `mlp chunk`, `mlp embed`, `mlp index build|add|query`, `mlp search` and
//! `mlp eval retrieval` (the work is in `mlp-text`, `mlp-embed` and `mlp-vector`).

use clap::{Args, Subcommand, ValueEnum};
use mlp_compute::select::{select, DeviceChoice};
use mlp_embed::Embedder;
use mlp_text::{Chunk, ChunkConfig, Document, Format};
use mlp_vector::metrics::{Qrels, Run};
use mlp_vector::{BuildParams, Index, Metric};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse()
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    s.parse().map_err(|e| format!("{e}"))
}

#[derive(Copy, Clone, ValueEnum, PartialEq, Debug)]
pub enum Strategy {
    Fixed,
    Recursive,
    Sentence,
    Markdown,
    /// Recursive, sized in the model's own tokens (needs --model).
    Tokens,
}

#[derive(Copy, Clone, ValueEnum, PartialEq, Debug)]
pub enum UnitArg {
    Chars,
    Tokens,
}

/// Where an embedder comes from, and on which device a model runs.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// `hashing`, `hashing:DIM`, or a sentence-transformers model folder.
    #[arg(long)]
    pub model: Option<String>,
    /// Device for model embedders: auto, gpu or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
    /// Accept a software GPU adapter (lavapipe) for `gpu`/`auto`.
    #[arg(long)]
    pub allow_cpu_adapter: bool,
}

#[derive(Args)]
pub struct ChunkArgs {
    /// Files, folders (every file below) or glob patterns (quote them: 'docs/**/*.md').
    #[arg(required = true)]
    pub files: Vec<String>,
    #[arg(long, value_enum, default_value = "recursive")]
    pub strategy: Strategy,
    /// Largest chunk (default 1000 characters; for tokens, the model's limit).
    #[arg(long)]
    pub size: Option<usize>,
    /// Largest text shared by consecutive chunks, in the same unit (spec/chunking.md).
    #[arg(long, default_value_t = 0)]
    pub overlap: usize,
    #[arg(long, value_enum, default_value = "chars")]
    pub unit: UnitArg,
    /// The JSON Lines field that holds a record's text.
    #[arg(long, default_value = "text")]
    pub jsonl_field: String,
    /// Warn about and skip files that cannot be loaded (binary, bad encoding, empty) instead of
    /// stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Texts per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

#[derive(Subcommand)]
pub enum IndexCmd {
    /// Build an index from `mlp embed` output (JSON Lines) or a float32 .npy matrix.
    Build {
        /// JSON Lines with `embedding` (and `id`, `embedder`, any other fields as metadata),
        /// or a [count, dim] .npy.
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "cosine", value_parser = parse_metric)]
        metric: Metric,
        #[arg(long)]
        ef_construction: Option<usize>,
        #[arg(long)]
        ef_search: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Exact (brute-force) search instead of HNSW.
        #[arg(long)]
        exact: bool,
        /// For .npy input: the embedder that made the vectors (default `none`).
        #[arg(long)]
        embedder: Option<String>,
        /// For .npy input: a file with one id per line (default: row numbers).
        #[arg(long)]
        ids: Option<PathBuf>,
    },
    /// Add `mlp embed` output to an existing index (ids already there are skipped).
    Add { index: PathBuf, input: PathBuf },
    /// Nearest neighbours of every row of a float32 .npy of queries.
    Query {
        index: PathBuf,
        queries: PathBuf,
        #[arg(short, default_value_t = 10)]
        k: usize,
        /// Exact search, whatever the index was built for.
        #[arg(long)]
        exact: bool,
        #[arg(long)]
        json: bool,
    },
    /// The index's header: embedder, dimension, count, metric, build parameters.
    Info { index: PathBuf },
}

#[derive(Args)]
pub struct SearchArgs {
    pub index: PathBuf,
    pub question: String,
    #[arg(short, default_value_t = 5)]
    pub k: usize,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Subcommand)]
pub enum EvalCmd {
    /// recall@k, MRR@k and nDCG@k of an index on a question set.
    Retrieval(EvalArgs),
}

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    pub index: PathBuf,
    /// JSON Lines: `id` and `question` (or `query`/`text`); with no --qrels, each line's
    /// `relevant` list of {path, quote} passages decides relevance (examples/rag/README.md).
    #[arg(long)]
    pub queries: PathBuf,
    /// TREC qrels (`qid 0 docid rel`) over the index's ids.
    #[arg(long)]
    pub qrels: Option<PathBuf>,
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

// ------------------------------------------------------------------------------------ embedders

fn backend_for(
    m: &ModelArgs,
) -> impl FnOnce() -> mlp_compute::Result<Arc<dyn mlp_compute::Backend>> {
    let (device, allow) = (m.device, m.allow_cpu_adapter);
    move || {
        let (b, notice) = select(device, allow)?;
        if let Some(n) = notice {
            eprintln!("{n}");
        }
        Ok(Arc::from(b))
    }
}

fn load_embedder(spec: &str, m: &ModelArgs) -> Result<Box<dyn Embedder>, String> {
    mlp_embed::load(spec, backend_for(m)).map_err(|e| e.to_string())
}

/// The embedder an index was built with: hashing ids are rebuilt from the id; model ids need
/// `--model` (or `MLP_MODEL`) naming the folder, and must match.
fn embedder_for_index(index: &Index, m: &ModelArgs) -> Result<Box<dyn Embedder>, String> {
    let id = index.meta().embedder.clone();
    let spec = match m.model.clone().or_else(|| std::env::var("MLP_MODEL").ok()) {
        Some(s) => s,
        None => match hashing_spec(&id) {
            Some(s) => s,
            None => {
                return Err(format!(
                    "the index was built with embedder `{id}`: pass its model folder with --model \
                     (or MLP_MODEL)"
                ))
            }
        },
    };
    let e = load_embedder(&spec, m)?;
    index
        .check_embedder(e.id(), e.dim())
        .map_err(|err| err.to_string())?;
    Ok(e)
}

/// `hashing:DIM` for a hashing embedder's id (`hashing:v1:dim=384:ngrams=1-2`), when it is the
/// default n-gram range that spec builds; else None.
fn hashing_spec(id: &str) -> Option<String> {
    let rest = id.strip_prefix("hashing:")?;
    let dim = rest
        .split(':')
        .find_map(|p| p.strip_prefix("dim="))?
        .parse::<usize>()
        .ok()?;
    Some(format!("hashing:{dim}"))
}

// ---------------------------------------------------------------------------------------- chunk

fn chunk_doc(
    doc: &Document,
    strategy: Strategy,
    cfg: &ChunkConfig,
) -> mlp_text::Result<Vec<Chunk>> {
    match strategy {
        Strategy::Fixed => mlp_text::chunk::fixed(&doc.id, &doc.text, cfg),
        Strategy::Recursive | Strategy::Tokens => {
            mlp_text::chunk::recursive(&doc.id, &doc.text, cfg)
        }
        Strategy::Sentence => mlp_text::chunk::sentence(&doc.id, &doc.text, cfg),
        Strategy::Markdown => mlp_text::chunk::markdown(&doc.id, &doc.text, cfg),
    }
}

pub fn chunk(a: ChunkArgs) -> ExitCode {
    let files = match crate::expand_paths(&a.files, |_| true) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let tokens = a.unit == UnitArg::Tokens || a.strategy == Strategy::Tokens;
    let embedder = match (&a.model.model, tokens) {
        (Some(m), _) => match load_embedder(m, &a.model) {
            Ok(e) => Some(e),
            Err(e) => return fail(e),
        },
        (None, true) => {
            return fail(
                "token sizes (--unit tokens or --strategy tokens) need --model DIR: the \
                         chunks are measured in that model's tokens",
            )
        }
        (None, false) => None,
    };
    let limit = embedder.as_ref().and_then(|e| e.max_tokens());
    let size = match (a.size, tokens) {
        (Some(s), _) => s,
        (None, true) => match limit {
            Some(l) => l,
            None => return fail("the embedder has no token limit: give --size"),
        },
        (None, false) => 1000,
    };
    if tokens {
        if let Some(l) = limit {
            if size > l {
                return fail(format!(
                    "--size {size} tokens exceeds the model's limit of {l} text tokens: every \
                     chunk that long would be truncated"
                ));
            }
        }
    }
    let cfg = match (&embedder, tokens) {
        (Some(e), true) => ChunkConfig::tokens(size, a.overlap, e.tokenizer()),
        _ => ChunkConfig::chars(size, a.overlap),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut n_docs, mut n_chunks, mut skipped) = (0usize, 0usize, 0usize);
    for path in &files {
        let format = Format::for_path(path, &a.jsonl_field);
        // Plain text beyond the in-memory limit is streamed (fixed and recursive chunking in
        // characters), in bounded memory.
        let big = std::fs::metadata(path)
            .map(|m| m.len() > mlp_text::load::DEFAULT_MAX_FILE_BYTES)
            .unwrap_or(false);
        let streamable = matches!(a.strategy, Strategy::Fixed | Strategy::Recursive) && !tokens;
        if big && format == Format::Text && streamable {
            let strategy = if a.strategy == Strategy::Fixed {
                mlp_text::StreamStrategy::Fixed
            } else {
                mlp_text::StreamStrategy::RECURSIVE
            };
            let shown = path.display().to_string();
            let mut write_err = false;
            let res = mlp_text::chunk_file_streaming(path, &cfg, strategy, |c| {
                n_chunks += 1;
                let v = json!({
                    "id": c.id, "doc": c.doc_id, "path": shown, "index": c.index,
                    "start": c.start, "end": c.end, "text": c.text,
                });
                if writeln!(out, "{v}").is_err() {
                    write_err = true;
                    return Err(mlp_text::TextError::Config("output closed".into()));
                }
                Ok(())
            });
            if write_err {
                return ExitCode::from(1);
            }
            match res {
                Ok(_) => n_docs += 1,
                Err(e) if a.skip_bad => {
                    eprintln!("warning: skipped {}: {e}", path.display());
                    skipped += 1;
                }
                Err(e) => return fail(e),
            }
            continue;
        }
        if big && !(format == Format::Text && streamable) {
            let msg = format!(
                "{}: over {} MiB, too big to load whole; only plain text with --strategy fixed \
                 or recursive in characters is chunked streaming, in bounded memory",
                path.display(),
                mlp_text::load::DEFAULT_MAX_FILE_BYTES >> 20
            );
            if a.skip_bad {
                eprintln!("warning: skipped {msg}");
                skipped += 1;
                continue;
            }
            return fail(msg);
        }
        let docs = match mlp_text::load::load_file(path, &format) {
            Ok(d) => d,
            Err(e) if a.skip_bad => {
                eprintln!("warning: skipped {}: {e}", path.display());
                skipped += 1;
                continue;
            }
            Err(e) => return fail(e),
        };
        for doc in &docs {
            let chunks = match chunk_doc(doc, a.strategy, &cfg) {
                Ok(c) => c,
                Err(e) => return fail(format!("{}: {e}", path.display())),
            };
            if let (Some(e), Some(l)) = (&embedder, limit) {
                if !tokens {
                    for w in
                        mlp_text::chunk::truncation_warnings(&chunks, e.tokenizer().as_ref(), l)
                    {
                        eprintln!("warning: {}: {w}", path.display());
                    }
                }
            }
            n_docs += 1;
            for c in chunks {
                n_chunks += 1;
                let mut v = json!({
                    "id": c.id,
                    "doc": c.doc_id,
                    "path": doc.path.display().to_string(),
                    "index": c.index,
                    "start": c.start,
                    "end": c.end,
                    "text": c.text,
                });
                let obj = v.as_object_mut().expect("object");
                for (k, val) in doc.metadata.iter().chain(&c.metadata) {
                    if k != "headings" {
                        obj.entry(k.clone()).or_insert(Value::String(val.clone()));
                    }
                }
                if writeln!(out, "{v}").is_err() {
                    return ExitCode::from(1);
                }
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(1);
    }
    eprintln!(
        "{n_chunks} chunks from {n_docs} documents in {} files{}",
        files.len() - skipped,
        if skipped > 0 {
            format!(" ({skipped} skipped)")
        } else {
            String::new()
        }
    );
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------- embed

pub fn embed(a: EmbedArgs) -> ExitCode {
    let Some(spec) = a.model.model.clone() else {
        return fail("--model is required: `hashing`, `hashing:DIM` or a model folder");
    };
    if a.batch == 0 {
        return fail("--batch must be at least 1");
    }
    let e = match load_embedder(&spec, &a.model) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // Records are embedded in blocks (the embedder sorts each block by length into batches),
    // and written in input order.
    let block = a.batch.max(1) * 16;
    let mut pending: Vec<(usize, Map<String, Value>, String)> = Vec::new();
    let mut n = 0usize;
    let flush = |pending: &mut Vec<(usize, Map<String, Value>, String)>,
                 out: &mut BufWriter<std::io::StdoutLock<'_>>|
     -> Result<(), String> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut done = Vec::with_capacity(pending.len());
        for part in pending.chunks(a.batch) {
            let texts: Vec<&str> = part.iter().map(|(_, _, t)| t.as_str()).collect();
            let embs = e
                .embed(&texts)
                .map_err(|err| format!("lines {}-{}: {err}", part[0].0, part[part.len() - 1].0))?;
            done.extend(embs);
        }
        for ((line, mut obj, _), emb) in pending.drain(..).zip(done) {
            if emb.truncated {
                let what = obj
                    .get("id")
                    .and_then(|v| v.as_str())
                    .map(|id| format!("line {line} (id {id})"))
                    .unwrap_or_else(|| format!("line {line}"));
                eprintln!(
                    "warning: {what}: the text was truncated to {} tokens by the embedder",
                    emb.tokens
                );
            }
            obj.insert(
                "embedding".into(),
                Value::Array(emb.vector.iter().map(|x| json!(x)).collect()),
            );
            obj.insert("tokens".into(), json!(emb.tokens));
            obj.insert("embedder".into(), json!(e.id()));
            writeln!(out, "{}", Value::Object(obj)).map_err(|err| err.to_string())?;
        }
        Ok(())
    };
    for (i, line) in stdin.lock().lines().enumerate() {
        let line_no = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(err) => return fail(format!("stdin line {line_no}: {err}")),
        };
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(err) => return fail(format!("stdin line {line_no}: not JSON: {err}")),
        };
        let Value::Object(obj) = v else {
            return fail(format!(
                "stdin line {line_no}: expected a JSON object with `text`"
            ));
        };
        let Some(text) = obj.get("text").and_then(|t| t.as_str()).map(str::to_string) else {
            return fail(format!("stdin line {line_no}: no string field `text`"));
        };
        pending.push((line_no, obj, text));
        n += 1;
        if pending.len() >= block {
            if let Err(err) = flush(&mut pending, &mut out) {
                return fail(err);
            }
        }
    }
    if let Err(err) = flush(&mut pending, &mut out) {
        return fail(err);
    }
    if out.flush().is_err() {
        return ExitCode::from(1);
    }
    eprintln!("{n} texts embedded with {} (dimension {})", e.id(), e.dim());
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------- index

/// Vectors, ids, metadata and the embedder id read from `mlp embed` output.
struct Embedded {
    vectors: Vec<f32>,
    dim: usize,
    ids: Vec<String>,
    metadata: Vec<Value>,
    embedder: Option<String>,
}

fn read_embedded(path: &Path) -> Result<Embedded, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = Embedded {
        vectors: Vec::new(),
        dim: 0,
        ids: Vec::new(),
        metadata: Vec::new(),
        embedder: None,
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let at = |m: String| format!("{}:{n}: {m}", path.display());
        let line = line.map_err(|e| at(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| at(format!("not JSON: {e}")))?;
        let Value::Object(mut obj) = v else {
            return Err(at("expected a JSON object".into()));
        };
        let emb = obj
            .remove("embedding")
            .ok_or_else(|| at("no `embedding` (is this `mlp embed` output?)".into()))?;
        let Value::Array(xs) = emb else {
            return Err(at("`embedding` is not an array".into()));
        };
        if r.dim == 0 {
            r.dim = xs.len();
        }
        if xs.len() != r.dim || xs.is_empty() {
            return Err(at(format!(
                "`embedding` has {} values, earlier lines {}",
                xs.len(),
                r.dim
            )));
        }
        for x in &xs {
            let f = x
                .as_f64()
                .ok_or_else(|| at("`embedding` holds a non-number".into()))?;
            r.vectors.push(f as f32);
        }
        let id = match obj.remove("id") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => (r.ids.len()).to_string(),
        };
        if let Some(Value::String(e)) = obj.remove("embedder") {
            match &r.embedder {
                None => r.embedder = Some(e),
                Some(prev) if *prev != e => {
                    return Err(at(format!(
                        "embedder `{e}` differs from earlier lines' `{prev}`"
                    )))
                }
                _ => {}
            }
        }
        obj.remove("tokens");
        r.ids.push(id);
        r.metadata.push(Value::Object(obj));
    }
    if r.ids.is_empty() {
        return Err(format!("{}: no records", path.display()));
    }
    Ok(r)
}

fn is_npy(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

pub fn index(cmd: IndexCmd) -> ExitCode {
    match cmd {
        IndexCmd::Build {
            input,
            out,
            metric,
            ef_construction,
            ef_search,
            seed,
            exact,
            embedder,
            ids,
        } => {
            let mut params = BuildParams::default();
            if let Some(e) = ef_construction {
                params.ef_construction = e;
            }
            if let Some(e) = ef_search {
                params.ef_search = e;
            }
            params.seed = seed;
            params.exact = exact;
            let (vectors, dim, idv, meta, emb) = if is_npy(&input) {
                let (v, rows, cols) = match mlp_vector::npy::read_f32_matrix(&input) {
                    Ok(x) => x,
                    Err(e) => return fail(e),
                };
                let idv: Vec<String> = match &ids {
                    Some(p) => match std::fs::read_to_string(p) {
                        Ok(t) => t.lines().map(str::to_string).collect(),
                        Err(e) => return fail(format!("{}: {e}", p.display())),
                    },
                    None => (0..rows).map(|i| i.to_string()).collect(),
                };
                if idv.len() != rows {
                    return fail(format!("{} ids for {rows} vectors", idv.len()));
                }
                let e = embedder.unwrap_or_else(|| "none".into());
                (v, cols, idv, vec![Value::Null; rows], e)
            } else {
                let r = match read_embedded(&input) {
                    Ok(r) => r,
                    Err(e) => return fail(e),
                };
                let e = match (embedder, r.embedder) {
                    (Some(a), Some(b)) if a != b => {
                        return fail(format!(
                            "--embedder `{a}` but the records were embedded with `{b}`"
                        ))
                    }
                    (Some(a), _) => a,
                    (None, Some(b)) => b,
                    (None, None) => "none".into(),
                };
                (r.vectors, r.dim, r.ids, r.metadata, e)
            };
            let t = std::time::Instant::now();
            let idx = match Index::build(&emb, dim, metric, params, &vectors, idv, meta) {
                Ok(i) => i,
                Err(e) => return fail(e),
            };
            let secs = t.elapsed().as_secs_f64();
            if let Err(e) = idx.save(&out) {
                return fail(e);
            }
            eprintln!(
                "{}: {} vectors of dimension {dim}, {metric}, {} ({secs:.2} s)",
                out.display(),
                idx.len(),
                if exact { "exact" } else { "HNSW" }
            );
            ExitCode::SUCCESS
        }
        IndexCmd::Add { index, input } => {
            let mut idx = match Index::load(&index) {
                Ok(i) => i,
                Err(e) => return fail(e),
            };
            let r = match read_embedded(&input) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            let emb = r.embedder.clone().unwrap_or_else(|| "none".into());
            if let Err(e) = idx.check_embedder(&emb, r.dim) {
                return fail(e);
            }
            let rep = match idx.add(&r.vectors, r.ids, r.metadata) {
                Ok(rep) => rep,
                Err(e) => return fail(e),
            };
            if let Err(e) = idx.save(&index) {
                return fail(e);
            }
            eprintln!(
                "{}: added {}, skipped {} already present; {} in all",
                index.display(),
                rep.added,
                rep.skipped_existing,
                idx.len()
            );
            ExitCode::SUCCESS
        }
        IndexCmd::Query {
            index,
            queries,
            k,
            exact,
            json,
        } => {
            let idx = match Index::load(&index) {
                Ok(i) => i,
                Err(e) => return fail(e),
            };
            let (q, _rows, cols) = match mlp_vector::npy::read_f32_matrix(&queries) {
                Ok(x) => x,
                Err(e) => return fail(e),
            };
            if cols != idx.meta().dim {
                return fail(format!(
                    "{}: queries have dimension {cols}, the index {}",
                    queries.display(),
                    idx.meta().dim
                ));
            }
            if k == 0 {
                return fail("-k must be at least 1");
            }
            let hits = if exact {
                idx.search_exact_batch(&q, k)
            } else {
                idx.search_batch(&q, k)
            };
            let hits = match hits {
                Ok(h) => h,
                Err(e) => return fail(e),
            };
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            for (i, hs) in hits.iter().enumerate() {
                let line = if json {
                    json!({
                        "query": i,
                        "ids": hs.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
                        "distances": hs.iter().map(|h| h.distance).collect::<Vec<_>>(),
                    })
                    .to_string()
                } else {
                    let parts: Vec<String> = hs
                        .iter()
                        .map(|h| format!("{} ({:.6})", h.id, h.distance))
                        .collect();
                    format!("{i}: {}", parts.join(" "))
                };
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::from(1);
                }
            }
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        IndexCmd::Info { index } => match Index::load(&index) {
            Ok(i) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(i.meta()).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

// --------------------------------------------------------------------------------------- search

pub fn search(a: SearchArgs) -> ExitCode {
    if a.k == 0 {
        return fail("-k must be at least 1");
    }
    let idx = match Index::load(&a.index) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let e = match embedder_for_index(&idx, &a.model) {
        Ok(e) => e,
        Err(err) => return fail(err),
    };
    let q = match e.embed(&[a.question.as_str()]) {
        Ok(mut v) => v.remove(0),
        Err(err) => return fail(err),
    };
    let hits = match idx.search(&q.vector, a.k) {
        Ok(h) => h,
        Err(err) => return fail(err),
    };
    if a.json {
        let v: Vec<Value> = hits
            .iter()
            .map(|h| json!({"id": h.id, "score": h.score, "distance": h.distance, "metadata": h.metadata}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    for (rank, h) in hits.iter().enumerate() {
        let m = &h.metadata;
        let place = match (
            m.get("path").and_then(Value::as_str),
            m.get("start"),
            m.get("end"),
        ) {
            (Some(p), Some(s), Some(en)) => format!("{p} bytes {s}..{en}"),
            (Some(p), _, _) => p.to_string(),
            _ => String::new(),
        };
        println!("{}. {}  score {:.4}  {place}", rank + 1, h.id, h.score);
        if let Some(t) = m.get("text").and_then(Value::as_str) {
            let flat: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = flat.chars().take(240).collect();
            let more = if flat.chars().count() > 240 {
                "..."
            } else {
                ""
            };
            println!("   {short}{more}");
        }
    }
    ExitCode::SUCCESS
}

// ----------------------------------------------------------------------------------------- eval

struct Question {
    id: String,
    text: String,
    relevant: Vec<(String, String)>,
}

fn read_questions(path: &Path) -> Result<Vec<Question>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("{}:{}: {m}", path.display(), i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| at(&format!("not JSON: {e}")))?;
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(at("no `id`")),
        };
        let q = ["question", "query", "text"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .ok_or_else(|| at("no `question` (or `query`/`text`)"))?;
        let mut relevant = Vec::new();
        if let Some(Value::Array(rs)) = v.get("relevant") {
            for r in rs {
                let p = r.get("path").and_then(Value::as_str);
                let quote = r.get("quote").and_then(Value::as_str);
                match (p, quote) {
                    (Some(p), Some(q)) => relevant.push((p.to_string(), q.to_string())),
                    _ => return Err(at("each `relevant` entry needs `path` and `quote`")),
                }
            }
        }
        out.push(Question {
            id,
            text: q.to_string(),
            relevant,
        });
    }
    if out.is_empty() {
        return Err(format!("{}: no questions", path.display()));
    }
    Ok(out)
}

fn canonical(p: &str, base: &Path) -> PathBuf {
    let path = Path::new(p);
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    std::fs::canonicalize(&full).unwrap_or(full)
}

/// Chunk-level qrels from quoted passages: a chunk is relevant (grade 1) to a question when its
/// byte range in the quoted file overlaps the quote's. Quote paths are relative to the current
/// folder; chunk paths as `mlp chunk` wrote them.
fn qrels_from_quotes(questions: &[Question], index: &Index) -> Result<Qrels, String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    // canonical path -> [(start, end, id)]
    let mut by_path: BTreeMap<PathBuf, Vec<(usize, usize, String)>> = BTreeMap::new();
    for id in index.ids() {
        let Some((_, m)) = index.get(id) else {
            continue;
        };
        let (Some(p), Some(s), Some(e)) = (
            m.get("path").and_then(Value::as_str),
            m.get("start").and_then(Value::as_u64),
            m.get("end").and_then(Value::as_u64),
        ) else {
            continue;
        };
        by_path.entry(canonical(p, &cwd)).or_default().push((
            s as usize,
            e as usize,
            id.to_string(),
        ));
    }
    if by_path.is_empty() {
        return Err(
            "the index records no chunk paths and byte ranges (build it from `mlp chunk` \
                    | `mlp embed` output), so quoted passages cannot be matched: pass --qrels"
                .into(),
        );
    }
    let mut qrels = Qrels::default();
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    for q in questions {
        for (p, quote) in &q.relevant {
            let key = canonical(p, &cwd);
            if !files.contains_key(&key) {
                let t = std::fs::read_to_string(&key)
                    .map_err(|e| format!("question {}: {p}: {e}", q.id))?;
                files.insert(key.clone(), t);
            }
            let text = &files[&key];
            let Some(at) = text.find(quote.as_str()) else {
                return Err(format!(
                    "question {}: the quote is not in {p}: {quote:?}",
                    q.id
                ));
            };
            let (qs, qe) = (at, at + quote.len());
            for (s, e, id) in by_path.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
                if *s < qe && qs < *e {
                    qrels.insert(&q.id, id, 1);
                }
            }
        }
    }
    Ok(qrels)
}

pub fn eval(cmd: EvalCmd) -> ExitCode {
    let EvalCmd::Retrieval(a) = cmd;
    if a.k == 0 {
        return fail("-k must be at least 1");
    }
    let idx = match Index::load(&a.index) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let questions = match read_questions(&a.queries) {
        Ok(q) => q,
        Err(e) => return fail(e),
    };
    let qrels = match &a.qrels {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => match Qrels::parse_trec(&t) {
                Ok(q) => q,
                Err(e) => return fail(format!("{}: {e}", p.display())),
            },
            Err(e) => return fail(format!("{}: {e}", p.display())),
        },
        None => match qrels_from_quotes(&questions, &idx) {
            Ok(q) => q,
            Err(e) => return fail(e),
        },
    };
    let e = match embedder_for_index(&idx, &a.model) {
        Ok(e) => e,
        Err(err) => return fail(err),
    };
    let texts: Vec<&str> = questions.iter().map(|q| q.text.as_str()).collect();
    let embs = match e.embed(&texts) {
        Ok(v) => v,
        Err(err) => return fail(err),
    };
    let flat: Vec<f32> = embs.iter().flat_map(|x| x.vector.iter().copied()).collect();
    let hits = match idx.search_batch(&flat, a.k) {
        Ok(h) => h,
        Err(err) => return fail(err),
    };
    let mut run = Run::new();
    for (q, hs) in questions.iter().zip(&hits) {
        run.insert(
            q.id.clone(),
            hs.iter().map(|h| (h.id.clone(), h.score as f64)).collect(),
        );
    }
    let report = mlp_vector::metrics::evaluate(&run, &qrels, a.k);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "{} questions with relevant passages, k = {}: recall@{k} {:.4}  MRR@{k} {:.4}  nDCG@{k} {:.4}",
            report.queries,
            a.k,
            report.recall,
            report.mrr,
            report.ndcg,
            k = a.k
        );
    }
    ExitCode::SUCCESS
}
