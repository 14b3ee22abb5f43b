//! The trace embedder on a tiny trained autoencoder checkpoint.

mod common;

use common::*;
use mlp_compute::model::{trace_autoencoder, unet, UNetConfig};
use mlp_compute::train::{Dataset, Optimizer, TrainConfig, Trainer};
use mlp_embed::{EmbedError, TraceEmbedder};

fn traces(n: usize, len: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng(seed);
    (0..n * len)
        .map(|i| ((i % len) as f32 * 0.3).sin() + r.f(-0.1, 0.1))
        .collect()
}

fn checkpoint(dir: &std::path::Path) -> (std::path::PathBuf, Trainer, Vec<f32>) {
    let x = traces(24, 32, 1);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        optimizer: Optimizer::sgd(0.9),
        lr: 1e-2,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(cpu(), trace_autoencoder(32, &[16, 4]).unwrap(), cfg).unwrap();
    t.fit(&Dataset::inputs(&x), None).unwrap();
    let path = dir.join("ae.safetensors");
    t.save_checkpoint(&path).unwrap();
    (path, t, x)
}

#[test]
fn embeds_traces_with_the_bottleneck() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut trainer, x) = checkpoint(dir.path());
    let e = TraceEmbedder::load(&path, cpu()).unwrap();
    assert_eq!(e.dim(), 4);
    assert_eq!(e.input_len(), 32);
    assert!(e.id().starts_with("trace:ae:"), "{}", e.id());
    let a = e.embed_traces(&x, 24).unwrap();
    assert_eq!(a.len(), 24);
    assert!(a.iter().all(|v| v.len() == 4));
    // Deterministic, and what the trainer's encoder gives.
    assert_eq!(a, e.embed_traces(&x, 24).unwrap());
    let flat: Vec<f32> = a.concat();
    assert_eq!(flat, trainer.encode(&x).unwrap());
    // One trace alone gives its row of the batch.
    let one = e.embed_traces(&x[32..64], 1).unwrap();
    assert!(max_diff(&one[0], &a[1]) < 1e-6);
    assert!(e.embed_traces(&[], 0).unwrap().is_empty());
    // Same weights, same id; another file name changes only the stem.
    let e2 = TraceEmbedder::load(&path, cpu()).unwrap();
    assert_eq!(e.id(), e2.id());
}

#[test]
fn batch_size_does_not_change_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, x) = checkpoint(dir.path());
    let mut e = TraceEmbedder::load(&path, cpu()).unwrap();
    let a = e.embed_traces(&x, 24).unwrap();
    e.set_batch_size(5).unwrap();
    let b = e.embed_traces(&x, 24).unwrap();
    for (p, q) in a.iter().zip(&b) {
        assert!(max_diff(p, q) < 1e-6);
    }
}

#[test]
fn gpu_agrees_with_cpu() {
    let Some(gpu) = gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (path, _, x) = checkpoint(dir.path());
    let c = TraceEmbedder::load(&path, cpu()).unwrap();
    let g = TraceEmbedder::load(&path, gpu).unwrap();
    assert_eq!(c.id(), g.id());
    let (a, b) = (
        c.embed_traces(&x, 24).unwrap(),
        g.embed_traces(&x, 24).unwrap(),
    );
    for (p, q) in a.iter().zip(&b) {
        assert!(max_diff(p, q) < 1e-4);
    }
}

#[test]
fn wrong_lengths_and_bad_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, x) = checkpoint(dir.path());
    let e = TraceEmbedder::load(&path, cpu()).unwrap();
    let err = e.embed_traces(&x[..30 * 2], 2).unwrap_err();
    assert!(matches!(err, EmbedError::Input(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("30 samples per trace") && msg.contains("32"),
        "{msg}"
    );
    let msg = e.embed_traces(&x[..33], 1).unwrap_err().to_string();
    assert!(msg.contains("33") && msg.contains("32"), "{msg}");
    let mut bad = x[..32].to_vec();
    bad[7] = f32::NAN;
    let msg = e.embed_traces(&bad, 1).unwrap_err().to_string();
    assert!(msg.contains("index 7"), "{msg}");

    let missing = dir.path().join("nope.safetensors");
    let msg = TraceEmbedder::load(&missing, cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("nope.safetensors") && msg.contains("missing"),
        "{msg}"
    );
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    let msg = TraceEmbedder::load(&junk, cpu()).err().unwrap().to_string();
    assert!(msg.contains("junk.safetensors"), "{msg}");

    // A U-Net checkpoint is refused.
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 2,
        ..TrainConfig::default()
    };
    let u = Trainer::new(
        cpu(),
        unet(&UNetConfig {
            depth: 1,
            base_channels: 2,
            height: 4,
            width: 4,
            ..UNetConfig::default()
        })
        .unwrap(),
        cfg,
    )
    .unwrap();
    let upath = dir.path().join("unet.safetensors");
    u.save_checkpoint(&upath).unwrap();
    let msg = TraceEmbedder::load(&upath, cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("U-Net") && msg.contains("unet.safetensors"),
        "{msg}"
    );
}
