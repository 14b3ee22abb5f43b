//! The trace autoencoder's encoder as an embedder of seismic traces.
//!
//! A checkpoint written by `mlp_compute::train::Trainer::save_checkpoint` of a model built by
//! `mlp_compute::model::autoencoder` holds the model spec (input length, hidden widths,
//! activation) in its `config` metadata, so the checkpoint alone rebuilds the network; the
//! embedding is the graph's `embedding` output (the bottleneck, the last encoder width), run
//! in inference mode by the trainer, exactly as `Trainer::encode`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mlp_compute::model::{AutoencoderConfig, ModelSpec};
use mlp_compute::train::Trainer;
use mlp_compute::Backend;
use serde_json::Value;

use crate::error::{file_err, unsupported, EmbedError, Result};

/// Embeds seismic traces with a trained trace autoencoder's encoder.
pub struct TraceEmbedder {
    id: String,
    path: PathBuf,
    config: AutoencoderConfig,
    trainer: Mutex<Trainer>,
}

impl TraceEmbedder {
    /// Loads a trace autoencoder checkpoint (safetensors written by the trainer) onto
    /// `backend`.
    pub fn load(checkpoint: &Path, backend: Arc<dyn Backend>) -> Result<Self> {
        let bytes = crate::error::read(checkpoint)?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| file_err(checkpoint, format!("malformed safetensors: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some("mlp-compute-checkpoint") {
            return Err(file_err(
                checkpoint,
                "not an mlp-compute checkpoint (no `format` metadata `mlp-compute-checkpoint`)",
            ));
        }
        let config: Value = meta
            .get("config")
            .ok_or_else(|| file_err(checkpoint, "no `config` metadata"))
            .and_then(|c| {
                serde_json::from_str(c)
                    .map_err(|e| file_err(checkpoint, format!("metadata `config`: {e}")))
            })?;
        let spec = config.get("model").cloned().unwrap_or(Value::Null);
        if spec.is_null() {
            return Err(unsupported(
                checkpoint,
                "the checkpoint has no model spec (the graph was not built by mlp_compute::model)",
            ));
        }
        let spec: ModelSpec = serde_json::from_value(spec.clone())
            .map_err(|e| file_err(checkpoint, format!("model spec: {e}")))?;
        let ae = match &spec {
            ModelSpec::TraceAutoencoder(c) => c.clone(),
            ModelSpec::UNet(_) => {
                return Err(unsupported(
                    checkpoint,
                    "a U-Net checkpoint; the trace embedder needs a trace autoencoder",
                ))
            }
        };
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| file_err(checkpoint, format!("malformed safetensors: {e}")))?;
        let mut h = blake3::Hasher::new();
        h.update(serde_json::to_string(&spec).unwrap_or_default().as_bytes());
        let mut names: Vec<&str> = st
            .names()
            .into_iter()
            .filter(|n| n.starts_with("param/") || n.starts_with("state/"))
            .collect();
        names.sort();
        for &n in &names {
            if let Ok(t) = st.tensor(n) {
                h.update(&[0]);
                h.update(n.as_bytes());
                h.update(&[0]);
                for d in t.shape() {
                    h.update(&(*d as u64).to_le_bytes());
                }
                h.update(t.data());
            }
        }
        let stem = checkpoint
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "checkpoint".into());
        let id = format!("trace:{stem}:{}", &h.finalize().to_hex()[..12]);
        let trainer = Trainer::from_checkpoint(backend, checkpoint).map_err(|e| match e {
            mlp_compute::ComputeError::Other(m) => file_err(checkpoint, m),
            other => EmbedError::Compute(other),
        })?;
        Ok(TraceEmbedder {
            id,
            path: checkpoint.to_path_buf(),
            config: ae,
            trainer: Mutex::new(trainer),
        })
    }

    /// `trace:<file stem>:<12 hex digits>`: the digits start the BLAKE3 hash of the model spec
    /// and the weights (`param/*` and `state/*` tensors: names, shapes, bytes), so retraining
    /// changes it and optimizer state does not.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The embedding size (the bottleneck width).
    pub fn dim(&self) -> usize {
        self.config.hidden.last().copied().unwrap_or(0)
    }

    /// Samples per trace the model reads.
    pub fn input_len(&self) -> usize {
        self.config.input
    }

    /// The model configuration from the checkpoint.
    pub fn config(&self) -> &AutoencoderConfig {
        &self.config
    }

    /// Traces per forward pass (default: the checkpoint's training batch size).
    pub fn set_batch_size(&mut self, n: usize) -> Result<()> {
        let t = self
            .trainer
            .get_mut()
            .map_err(|_| EmbedError::Input("trace embedder: a previous call panicked".into()))?;
        let mut c = t.config().clone();
        c.batch_size = n.max(1);
        t.set_config(c)?;
        Ok(())
    }

    /// The embeddings of `n` traces stored one after another in `traces` (`n *
    /// input_len()` samples), one vector of [`dim`](Self::dim) values per trace, in order.
    pub fn embed_traces(&self, traces: &[f32], n: usize) -> Result<Vec<Vec<f32>>> {
        let len = self.config.input;
        if n.checked_mul(len) != Some(traces.len()) {
            let per = if n == 0 {
                "no traces".to_string()
            } else if traces.len() % n == 0 {
                format!("{} samples per trace", traces.len() / n)
            } else {
                format!("{} samples, not a multiple of {n}", traces.len())
            };
            return Err(EmbedError::Input(format!(
                "trace embedder {}: got {n} traces of {per}; the model's input length is {len} samples",
                self.path.display()
            )));
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        if let Some(i) = traces.iter().position(|v| !v.is_finite()) {
            return Err(EmbedError::Input(format!(
                "trace {} has a non-finite sample ({}) at index {}",
                i / len,
                traces[i],
                i % len
            )));
        }
        let mut t = self
            .trainer
            .lock()
            .map_err(|_| EmbedError::Input("trace embedder: a previous call panicked".into()))?;
        let flat = t.encode(traces)?;
        let d = self.dim();
        if flat.len() != n * d {
            return Err(EmbedError::Input(format!(
                "trace embedder: the encoder returned {} values for {n} traces of dimension {d}",
                flat.len()
            )));
        }
        Ok(flat.chunks(d).map(<[f32]>::to_vec).collect())
    }
}
