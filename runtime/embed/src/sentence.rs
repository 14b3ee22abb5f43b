//! Sentence-transformer BERT models from a local folder (the layout `sentence-transformers`
//! saves): tokenization with the `tokenizers` crate, the encoder on an `mlp-compute` backend,
//! pooling and normalisation as the folder's modules say. See `spec/embedders.md`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlp_compute::Backend;
use serde_json::Value;
use tokenizers::{
    PaddingParams, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::bert::{BertConfig, BertModel, Pooling, Workspace};
use crate::error::{file_err, io_err, read_json, unsupported, EmbedError, Result};
use crate::{Embedder, Embedding};

/// Default number of texts per forward pass.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// The most elements one activation buffer of a batch may hold (64 MiB of `f32`): batches of
/// long texts are split below the batch size so that every buffer stays addressable by one
/// GPU binding (lavapipe allows 128 MiB) and memory stays bounded.
pub const MAX_BATCH_ELEMENTS: usize = 1 << 24;

/// A sentence-transformer BERT model (for example all-MiniLM-L6-v2) on a compute backend.
pub struct SentenceTransformer {
    id: String,
    dir: PathBuf,
    model: BertModel,
    /// Truncates at `max_seq_len` (special tokens included), never pads.
    tokenizer: Tokenizer,
    /// No truncation, no padding: counts text tokens.
    counter: Arc<TokenCounter>,
    max_seq_len: usize,
    specials: usize,
    pooling: Pooling,
    normalize: bool,
    batch_size: usize,
}

/// Counts the text tokens (special tokens excluded, no truncation) of a model's tokenizer.
pub struct TokenCounter {
    tokenizer: Tokenizer,
}

impl TokenCounter {
    /// The text tokens of `text`; a text the tokenizer refuses counts as its number of
    /// characters (an upper bound for WordPiece).
    pub fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode_fast(text, false) {
            Ok(e) => e.len(),
            Err(_) => text.chars().count(),
        }
    }
}

impl mlp_text::Tokenizer for TokenCounter {
    fn count_tokens(&self, text: &str) -> usize {
        self.count(text)
    }
}

/// The modules of `modules.json` this crate understands.
struct Modules {
    /// The Transformer module's folder (the model folder itself when its path is empty).
    transformer_dir: PathBuf,
    pooling_dir: PathBuf,
    normalize: bool,
}

fn parse_modules(dir: &Path) -> Result<Modules> {
    let path = dir.join("modules.json");
    let v: Value = read_json(&path)?;
    let list = v
        .as_array()
        .ok_or_else(|| file_err(&path, "malformed: expected a JSON array of modules"))?;
    let mut pooling_dir = None;
    let mut normalize = false;
    let mut transformer_dir = None;
    for (k, m) in list.iter().enumerate() {
        let ty = m.get("type").and_then(Value::as_str).ok_or_else(|| {
            file_err(
                &path,
                format!("module {k}: field `type` is missing or not a string"),
            )
        })?;
        let sub = m.get("path").and_then(Value::as_str).unwrap_or("");
        let short = ty.rsplit('.').next().unwrap_or(ty);
        match short {
            "Transformer" if k == 0 => transformer_dir = Some(dir.join(sub)),
            "Pooling" if transformer_dir.is_some() && pooling_dir.is_none() => {
                pooling_dir = Some(dir.join(sub))
            }
            "Normalize" if pooling_dir.is_some() && k + 1 == list.len() => normalize = true,
            _ => {
                return Err(unsupported(
                    &path,
                    format!(
                        "module {k} `{ty}`; supported: Transformer, then Pooling, then an optional Normalize"
                    ),
                ))
            }
        }
    }
    let pooling_dir = pooling_dir
        .ok_or_else(|| unsupported(&path, "no Transformer module followed by a Pooling module"))?;
    Ok(Modules {
        transformer_dir: transformer_dir.unwrap_or_else(|| dir.to_path_buf()),
        pooling_dir,
        normalize,
    })
}

fn parse_pooling(path: &Path, hidden: usize) -> Result<Pooling> {
    let v: Value = read_json(path)?;
    let obj = v
        .as_object()
        .ok_or_else(|| file_err(path, "malformed: expected a JSON object"))?;
    if let Some(d) = obj.get("word_embedding_dimension") {
        if d.as_u64() != Some(hidden as u64) {
            return Err(file_err(
                path,
                format!(
                    "word_embedding_dimension {d} differs from the model's hidden_size {hidden}"
                ),
            ));
        }
    }
    let mut modes = Vec::new();
    for (k, val) in obj {
        let Some(mode) = k.strip_prefix("pooling_mode_") else {
            continue;
        };
        match val {
            Value::Bool(false) => {}
            Value::Bool(true) => modes.push(mode.to_string()),
            other => {
                return Err(file_err(
                    path,
                    format!("field `{k}` must be true or false, got {other}"),
                ))
            }
        }
    }
    match modes.as_slice() {
        [m] => match m.as_str() {
            "mean_tokens" => Ok(Pooling::Mean),
            "cls_token" => Ok(Pooling::Cls),
            "max_tokens" => Ok(Pooling::Max),
            "mean_sqrt_len_tokens" => Ok(Pooling::MeanSqrtLen),
            other => Err(unsupported(
                path,
                format!("pooling mode `{other}`; supported: mean_tokens, cls_token, max_tokens, mean_sqrt_len_tokens"),
            )),
        },
        [] => Err(file_err(path, "no pooling_mode_* field is true")),
        many => Err(unsupported(
            path,
            format!(
                "several pooling modes at once ({}); exactly one is supported",
                many.join(", ")
            ),
        )),
    }
}

fn max_seq_length(dir: &Path) -> Result<usize> {
    let path = dir.join("sentence_bert_config.json");
    let v: Value = read_json(&path)?;
    v.get("max_seq_length")
        .and_then(Value::as_u64)
        .filter(|&m| m > 0 && m <= u32::MAX as u64)
        .map(|m| m as usize)
        .ok_or_else(|| {
            file_err(
                &path,
                "field `max_seq_length` is missing or not a positive integer",
            )
        })
}

/// The folder's id: `st:<folder name>:<12 hex digits>` where the digits start the BLAKE3 hash
/// of, for each of `config.json`, `tokenizer.json` and `model.safetensors` in that order, the
/// file name, a NUL byte, the length as a little-endian u64 and the bytes.
fn model_id(dir: &Path, files: &[(&str, &[u8])]) -> String {
    let mut h = blake3::Hasher::new();
    for (name, bytes) in files {
        h.update(name.as_bytes());
        h.update(&[0]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    format!("st:{name}:{}", &h.finalize().to_hex()[..12])
}

fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    // SAFETY: the map is read-only and private to this process; the model folder is not
    // expected to change while it loads (a concurrent writer could change the bytes read,
    // which safetensors' checks then report as an error).
    unsafe { memmap2::Mmap::map(&f) }.map_err(|e| file_err(path, format!("cannot map: {e}")))
}

impl SentenceTransformer {
    /// Loads the model folder `dir` (`modules.json`; in the Transformer module's folder, the
    /// folder itself for MiniLM: `config.json`, `tokenizer.json`, `model.safetensors`,
    /// `sentence_bert_config.json`; the pooling module's `config.json`) and uploads its
    /// weights to `backend`.
    pub fn load(dir: &Path, backend: Arc<dyn Backend>) -> Result<Self> {
        if !dir.is_dir() {
            return Err(file_err(dir, "not a model folder (no such directory)"));
        }
        let modules = parse_modules(dir)?;
        let tdir = modules.transformer_dir.as_path();
        let config_path = tdir.join("config.json");
        let config_bytes = crate::error::read(&config_path)?;
        let config_json: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| file_err(&config_path, format!("malformed JSON: {e}")))?;
        let config = BertConfig::from_json(&config_json, &config_path)?;

        let pooling_path = modules.pooling_dir.join("config.json");
        let pooling = parse_pooling(&pooling_path, config.hidden_size)?;
        let max_seq_len = max_seq_length(tdir)?.min(config.max_position_embeddings);

        let tok_path = tdir.join("tokenizer.json");
        let tok_bytes = crate::error::read(&tok_path)?;
        let mut tokenizer = Tokenizer::from_bytes(&tok_bytes)
            .map_err(|e| file_err(&tok_path, format!("malformed tokenizer: {e}")))?;
        tokenizer.with_padding(None::<PaddingParams>);
        tokenizer
            .with_truncation(None)
            .map_err(|e| file_err(&tok_path, format!("tokenizer truncation: {e}")))?;
        let counter = Arc::new(TokenCounter {
            tokenizer: tokenizer.clone(),
        });
        let specials = tokenizer
            .get_post_processor()
            .map(|p| tokenizers::PostProcessor::added_tokens(p, false))
            .unwrap_or(0);
        if specials >= max_seq_len {
            return Err(file_err(
                &tdir.join("sentence_bert_config.json"),
                format!(
                    "max_seq_length {max_seq_len} leaves no room next to {specials} special tokens"
                ),
            ));
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_seq_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| file_err(&tok_path, format!("tokenizer truncation: {e}")))?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(file_err(
                &tok_path,
                format!(
                    "the tokenizer has {vocab} tokens, the model's vocab_size is {}",
                    config.vocab_size
                ),
            ));
        }

        let model_path = tdir.join("model.safetensors");
        let map = map_file(&model_path)?;
        let id = model_id(
            dir,
            &[
                ("config.json", &config_bytes),
                ("tokenizer.json", &tok_bytes),
                ("model.safetensors", &map),
            ],
        );
        let model = BertModel::load(backend, config, &map, &model_path)?;
        Ok(SentenceTransformer {
            id,
            dir: dir.to_path_buf(),
            model,
            tokenizer,
            counter,
            max_seq_len,
            specials,
            pooling,
            normalize: modules.normalize,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Texts per forward pass (at least 1; default 32). Results do not depend on it beyond
    /// float rounding.
    pub fn set_batch_size(&mut self, n: usize) {
        self.batch_size = n.max(1);
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Tokens the model reads per text, special tokens included (`max_seq_length` of
    /// `sentence_bert_config.json`, capped by `max_position_embeddings`).
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// The pooling mode of the folder's Pooling module.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Whether the folder ends with a Normalize module (embeddings of unit L2 norm).
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// The encoder's configuration.
    pub fn config(&self) -> &BertConfig {
        self.model.config()
    }

    /// The token ids the model reads for `text` (special tokens included, truncated at
    /// [`max_seq_len`](Self::max_seq_len)) and whether the text was truncated.
    pub fn token_ids(&self, text: &str) -> Result<(Vec<u32>, bool)> {
        let e = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| EmbedError::Input(format!("tokenizer: {e}")))?;
        Ok((e.get_ids().to_vec(), !e.get_overflowing().is_empty()))
    }
}

impl Embedder for SentenceTransformer {
    fn id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.model.config().hidden_size
    }

    fn max_tokens(&self) -> Option<usize> {
        Some(self.max_seq_len - self.specials)
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.counter.count(text)
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encoded = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|e| EmbedError::Input(format!("tokenizer: {e}")))?;
        let seqs: Vec<(Vec<u32>, bool)> = encoded
            .iter()
            .map(|e| (e.get_ids().to_vec(), !e.get_overflowing().is_empty()))
            .collect();
        if let Some((k, _)) = seqs.iter().enumerate().find(|(_, s)| s.0.is_empty()) {
            return Err(EmbedError::Input(format!(
                "text {k} encodes to no tokens (the tokenizer adds no special tokens)"
            )));
        }
        // Longest first (like sentence-transformers), ties by position: batches of similar
        // lengths waste little padding.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by(|&a, &b| seqs[b].0.len().cmp(&seqs[a].0.len()).then(a.cmp(&b)));
        let mut ws = Workspace::new(self.model.backend().clone());
        let mut out: Vec<Option<Embedding>> = (0..seqs.len()).map(|_| None).collect();
        let c = self.model.config();
        let widest = c.hidden_size.max(c.intermediate_size);
        let heads = c.num_attention_heads;
        // A batch of b texts padded to s tokens fits when its largest buffers (b s widest
        // activations, b heads s s attention scores) stay within MAX_BATCH_ELEMENTS.
        let fits = |b: usize, s: usize| {
            b * s * widest <= MAX_BATCH_ELEMENTS && b * heads * s * s <= MAX_BATCH_ELEMENTS
        };
        let mut batches: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            // Sorted longest first: the first text of a batch sets its padded length.
            let s = seqs[order[start]].0.len();
            let mut end = start + 1;
            while end < order.len() && end - start < self.batch_size && fits(end - start + 1, s) {
                end += 1;
            }
            batches.push(&order[start..end]);
            start = end;
        }
        for batch in batches {
            let ids: Vec<&[u32]> = batch.iter().map(|&k| seqs[k].0.as_slice()).collect();
            let pooled = self.model.forward(&mut ws, &ids, self.pooling)?;
            for (&k, mut v) in batch.iter().zip(pooled) {
                if self.normalize {
                    normalize(&mut v);
                }
                out[k] = Some(Embedding {
                    vector: v,
                    tokens: seqs[k].0.len(),
                    truncated: seqs[k].1,
                });
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    fn tokenizer(&self) -> Arc<dyn mlp_text::Tokenizer> {
        self.counter.clone()
    }
}

/// Divides by the L2 norm (computed in f64), as `torch.nn.functional.normalize` does (norms
/// below 1e-12 are taken as 1e-12).
fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    let inv = 1.0 / norm.max(1e-12);
    for x in v.iter_mut() {
        *x = (*x as f64 * inv) as f32;
    }
}
