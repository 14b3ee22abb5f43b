//! Throughput of a sentence-transformer model on a compute backend.
//!
//! ```sh
//! cargo run --release -p mlp-embed --bin mlp-embed-bench -- --model DIR [--device cpu|gpu|auto]
//!     [--allow-cpu-adapter] [--sentences N] [--batch N] [--seed S] [--json] [--dump FILE]
//! ```
//!
//! The sentences are generated deterministically from `--seed` with mixed lengths (about half
//! short, a third medium, the rest long enough that some are truncated). `--dump FILE` writes
//! the sentences and the embeddings as JSON for `bench/st_reference.py`, which runs
//! sentence-transformers on the same sentences and compares. `--compare FILE` reports the
//! largest `1 - cosine` against the embeddings of an earlier dump of the same sentences (another
//! device, another build).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use mlp_compute::select::{select, DeviceChoice};
use mlp_embed::{Embedder, SentenceTransformer};

const USAGE: &str =
    "usage: mlp-embed-bench --model DIR [--device cpu|gpu|auto] [--allow-cpu-adapter] \
[--sentences N] [--batch N] [--seed S] [--json] [--dump FILE] [--compare FILE]";

struct Args {
    model: PathBuf,
    device: DeviceChoice,
    allow_cpu_adapter: bool,
    sentences: usize,
    batch: usize,
    seed: u64,
    json: bool,
    dump: Option<PathBuf>,
    compare: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        model: PathBuf::new(),
        device: DeviceChoice::Cpu,
        allow_cpu_adapter: false,
        sentences: 1000,
        batch: 32,
        seed: 1,
        json: false,
        dump: None,
        compare: None,
    };
    let mut model = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let num = |name: &str, v: String| -> Result<usize, String> {
            v.parse()
                .map_err(|_| format!("{name}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(value("--model")?)),
            "--device" => a.device = value("--device")?.parse()?,
            "--allow-cpu-adapter" => a.allow_cpu_adapter = true,
            "--sentences" => a.sentences = num("--sentences", value("--sentences")?)?,
            "--batch" => a.batch = num("--batch", value("--batch")?)?.max(1),
            "--seed" => a.seed = num("--seed", value("--seed")?)? as u64,
            "--json" => a.json = true,
            "--dump" => a.dump = Some(PathBuf::from(value("--dump")?)),
            "--compare" => a.compare = Some(PathBuf::from(value("--compare")?)),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    a.model = model
        .or_else(|| std::env::var_os("MLP_MINILM_DIR").map(PathBuf::from))
        .ok_or_else(|| format!("--model DIR is required\n{USAGE}"))?;
    Ok(a)
}

const WORDS: &[&str] = &[
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "with",
    "as",
    "was",
    "on",
    "be",
    "at",
    "by",
    "this",
    "from",
    "or",
    "an",
    "are",
    "which",
    "not",
    "but",
    "have",
    "has",
    "were",
    "can",
    "all",
    "their",
    "more",
    "one",
    "when",
    "there",
    "its",
    "into",
    "only",
    "other",
    "new",
    "some",
    "time",
    "could",
    "these",
    "two",
    "may",
    "then",
    "first",
    "any",
    "like",
    "over",
    "such",
    "our",
    "most",
    "after",
    "also",
    "made",
    "many",
    "before",
    "must",
    "through",
    "where",
    "much",
    "should",
    "well",
    "between",
    "each",
    "under",
    "never",
    "same",
    "another",
    "while",
    "seismic",
    "survey",
    "trace",
    "fault",
    "horizon",
    "reservoir",
    "sandstone",
    "shale",
    "velocity",
    "amplitude",
    "frequency",
    "migration",
    "stack",
    "inline",
    "crossline",
    "depth",
    "interpretation",
    "well",
    "log",
    "porosity",
    "pressure",
    "basin",
    "channel",
    "salt",
    "dome",
    "reflection",
    "noise",
    "filter",
    "sample",
    "interval",
    "geophone",
    "receiver",
    "source",
    "pipeline",
    "model",
    "training",
    "embedding",
    "vector",
    "index",
    "query",
    "retrieval",
    "document",
    "chunk",
    "token",
    "tokenizer",
    "encoder",
    "layer",
    "attention",
    "network",
    "gradient",
    "loss",
    "batch",
    "epoch",
    "accuracy",
    "benchmark",
    "throughput",
    "latency",
    "memory",
    "kernel",
    "device",
    "buffer",
    "tensor",
    "matrix",
    "compiler",
    "language",
    "type",
    "schema",
    "table",
    "column",
    "price",
    "steel",
    "month",
    "forecast",
    "report",
    "engineer",
    "team",
    "project",
    "customer",
    "contract",
    "budget",
    "meeting",
    "schedule",
    "analysis",
    "weather",
    "river",
    "mountain",
    "city",
    "morning",
    "evening",
    "music",
    "movie",
    "game",
    "food",
    "bread",
    "coffee",
    "market",
    "street",
    "garden",
    "window",
    "children",
    "friend",
    "quickly",
    "slowly",
    "carefully",
    "significantly",
    "roughly",
    "nearly",
    "clearly",
    "large",
    "small",
    "deep",
    "shallow",
    "noisy",
    "clean",
    "accurate",
    "robust",
    "fast",
    "slow",
    "runs",
    "finds",
    "shows",
    "records",
    "measures",
    "predicts",
    "returns",
    "stores",
    "reads",
    "writes",
    "computes",
    "compares",
    "improves",
    "reduces",
    "increases",
    "describes",
    "Zürich",
    "naïve",
    "café",
    "résumé",
    "2024",
    "3.5",
    "km",
    "ms",
    "GPU",
    "CPU",
    "API",
    "U-Net",
];

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// `n` sentences: 50% of 4-12 words, 35% of 12-40, 15% of 40-220 (some beyond 256 tokens).
fn sentences(n: usize, seed: u64) -> Vec<String> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| {
            let kind = r.below(100);
            let len = if kind < 50 {
                r.range(4, 12)
            } else if kind < 85 {
                r.range(12, 40)
            } else {
                r.range(40, 220)
            };
            let mut s = String::new();
            for k in 0..len {
                let w = WORDS[r.below(WORDS.len())];
                if k == 0 {
                    let mut c = w.chars();
                    if let Some(f) = c.next() {
                        s.extend(f.to_uppercase());
                        s.push_str(c.as_str());
                    }
                } else {
                    s.push(' ');
                    s.push_str(w);
                }
                if k + 1 < len && r.below(12) == 0 {
                    s.push(',');
                }
            }
            s.push(if r.below(10) == 0 { '?' } else { '.' });
            s
        })
        .collect()
}

fn run(a: Args) -> Result<(), String> {
    let (backend, notice) = select(a.device, a.allow_cpu_adapter).map_err(|e| e.to_string())?;
    if let Some(n) = notice {
        eprintln!("{n}");
    }
    let backend: Arc<dyn mlp_compute::Backend> = Arc::from(backend);
    let device = backend.describe();
    let t0 = Instant::now();
    let mut model = SentenceTransformer::load(&a.model, backend).map_err(|e| e.to_string())?;
    let load_s = t0.elapsed().as_secs_f64();
    model.set_batch_size(a.batch);
    let texts = sentences(a.sentences, a.seed);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Warm-up (kernel compilation, buffer pools), not timed.
    model
        .embed(&refs[..refs.len().min(a.batch)])
        .map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    let embs = model.embed(&refs).map_err(|e| e.to_string())?;
    let secs = t1.elapsed().as_secs_f64();
    let tokens: usize = embs.iter().map(|e| e.tokens).sum();
    let truncated = embs.iter().filter(|e| e.truncated).count();
    let sps = a.sentences as f64 / secs;
    let tps = tokens as f64 / secs;
    if let Some(path) = &a.dump {
        let v = serde_json::json!({
            "model_id": model.id(),
            "sentences": texts,
            "embeddings": embs.iter().map(|e| &e.vector).collect::<Vec<_>>(),
            "tokens": embs.iter().map(|e| e.tokens).collect::<Vec<_>>(),
        });
        std::fs::write(path, v.to_string())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let deviation = match &a.compare {
        Some(path) => Some(compare(path, &texts, &embs)?),
        None => None,
    };
    if a.json {
        let v = serde_json::json!({
            "max_cosine_deviation": deviation,
            "model_id": model.id(),
            "device": device,
            "sentences": a.sentences,
            "batch": a.batch,
            "tokens": tokens,
            "truncated": truncated,
            "load_seconds": load_s,
            "seconds": secs,
            "sentences_per_s": sps,
            "tokens_per_s": tps,
        });
        println!("{v}");
    } else {
        println!("model      {} ({})", model.id(), a.model.display());
        println!("device     {device}");
        println!("load       {load_s:.2} s");
        println!(
            "sentences  {} ({tokens} tokens, {truncated} truncated at {}), batch {}",
            a.sentences,
            model.max_seq_len(),
            a.batch
        );
        println!("time       {secs:.2} s");
        println!("throughput {sps:.1} sentences/s, {tps:.0} tokens/s");
        if let (Some(d), Some(p)) = (deviation, &a.compare) {
            println!("agreement  max 1 - cosine {d:.2e} against {}", p.display());
        }
    }
    Ok(())
}

/// The largest `1 - cosine` between `embs` and the embeddings of a dump of the same sentences.
fn compare(
    path: &std::path::Path,
    texts: &[String],
    embs: &[mlp_embed::Embedding],
) -> Result<f64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let same = v["sentences"].as_array().is_some_and(|s| {
        s.len() == texts.len() && s.iter().zip(texts).all(|(a, b)| a.as_str() == Some(b))
    });
    if !same {
        return Err(format!(
            "{}: not a dump of the same sentences (use the same --sentences and --seed)",
            path.display()
        ));
    }
    let rows = v["embeddings"]
        .as_array()
        .ok_or_else(|| format!("{}: no embeddings", path.display()))?;
    let mut worst = 0f64;
    for (row, e) in rows.iter().zip(embs) {
        let other: Vec<f32> = row
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_f64())
                    .map(|x| x as f32)
                    .collect()
            })
            .unwrap_or_default();
        if other.len() != e.vector.len() {
            return Err(format!("{}: embedding sizes differ", path.display()));
        }
        worst = worst.max(1.0 - mlp_embed::cosine(&e.vector, &other));
    }
    Ok(worst)
}

fn main() -> ExitCode {
    match parse().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlp-embed-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
