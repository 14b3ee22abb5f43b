//! The sentence-transformer loader and encoder on a tiny random BERT folder written by the
//! test (no downloads): missing and malformed files, unsupported models, the tokenizer
//! overrides, pooling modes, batching, and CPU/GPU agreement.

mod common;

use std::path::Path;

use common::*;
use mlp_embed::{cosine, EmbedError, Embedder, SentenceTransformer};

fn tiny(max_seq: usize, pooling: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_tiny_model(d.path(), max_seq, pooling);
    d
}

fn load_err(dir: &Path) -> String {
    match SentenceTransformer::load(dir, cpu()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

const TEXTS: &[&str] = &[
    "the seismic trace is in the data",
    "we see a fault",
    "deep and shallow noise in the survey of the seismic data, we embed traces",
    "",
    "faults!",
];

#[test]
fn missing_files_are_named() {
    for file in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
    ] {
        let d = tiny(16, "mean_tokens");
        std::fs::remove_file(d.path().join(file)).unwrap();
        let e = load_err(d.path());
        assert!(
            e.contains(file) && e.contains("missing"),
            "removing {file}: {e}"
        );
    }
    let e = load_err(Path::new("/no/such/model"));
    assert!(e.contains("/no/such/model"), "{e}");
}

#[test]
fn malformed_files_are_named() {
    for file in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
    ] {
        let d = tiny(16, "mean_tokens");
        std::fs::write(d.path().join(file), b"{ not json").unwrap();
        let e = load_err(d.path());
        assert!(e.contains(file) && e.contains("malformed"), "{file}: {e}");
    }
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn unsupported_models_are_refused() {
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "config.json",
            Box::new(|v| v["model_type"] = "roberta".into()),
            "model_type `roberta`",
        ),
        (
            "config.json",
            Box::new(|v| v["hidden_act"] = "gelu_new".into()),
            "hidden_act `gelu_new`",
        ),
        (
            "config.json",
            Box::new(|v| v["position_embedding_type"] = "relative_key".into()),
            "position_embedding_type",
        ),
        (
            "config.json",
            Box::new(|v| v["num_attention_heads"] = 5.into()),
            "not divisible",
        ),
        (
            "config.json",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("hidden_size");
            }),
            "`hidden_size` is missing",
        ),
        (
            "1_Pooling/config.json",
            Box::new(|v| v["pooling_mode_weightedmean_tokens"] = true.into()),
            "several pooling modes",
        ),
        (
            "1_Pooling/config.json",
            Box::new(|v| v["pooling_mode_mean_tokens"] = false.into()),
            "no pooling_mode",
        ),
        (
            "modules.json",
            Box::new(|v| {
                v.as_array_mut().unwrap().insert(
                    2,
                    serde_json::json!({"idx": 2, "name": "2", "path": "2_Dense",
                                       "type": "sentence_transformers.models.Dense"}),
                )
            }),
            "sentence_transformers.models.Dense",
        ),
        (
            "sentence_bert_config.json",
            Box::new(|v| v["max_seq_length"] = 0.into()),
            "max_seq_length",
        ),
    ];
    for (file, edit, want) in cases {
        let d = tiny(16, "mean_tokens");
        edit_json(&d.path().join(file), edit);
        let e = load_err(d.path());
        assert!(
            e.contains(file) && e.contains(want),
            "{file}: want {want:?} in {e}"
        );
    }
    // A vocabulary smaller than the tokenizer's.
    let d = tiny(16, "mean_tokens");
    edit_json(&d.path().join("config.json"), |v| {
        v["vocab_size"] = 10.into()
    });
    let e = load_err(d.path());
    assert!(
        e.contains("tokenizer.json") && e.contains("vocab_size"),
        "{e}"
    );
}

#[test]
fn missing_and_misshapen_tensors_are_named() {
    let d = tiny(16, "mean_tokens");
    edit_json(&d.path().join("config.json"), |v| {
        v["intermediate_size"] = 48.into()
    });
    let e = load_err(d.path());
    assert!(
        e.contains("model.safetensors")
            && e.contains("encoder.layer.0.intermediate.dense.weight")
            && e.contains("[48, 16]"),
        "{e}"
    );
    let d = tiny(16, "mean_tokens");
    edit_json(&d.path().join("config.json"), |v| {
        v["num_hidden_layers"] = 3.into()
    });
    let e = load_err(d.path());
    assert!(e.contains("no tensor `encoder.layer.2."), "{e}");
}

#[test]
fn tokenizer_overrides_truncation_and_padding() {
    // tokenizer.json truncates and pads at 8; the model reads up to max_seq_length = 12.
    let d = tiny(12, "mean_tokens");
    let m = SentenceTransformer::load(d.path(), cpu()).unwrap();
    assert_eq!(m.max_tokens(), Some(10));
    let (ids, truncated) = m.token_ids("we see").unwrap();
    assert_eq!(ids, [2, 17, 18, 3], "no padding");
    assert!(!truncated);
    let (ids, truncated) = m.token_ids(TEXTS[2]).unwrap();
    assert!(truncated);
    assert_eq!(ids.len(), 12);
    assert_eq!(ids[0], 2);
    assert_eq!(ids[11], 3);
    assert_eq!(m.count_tokens(TEXTS[2]), 16);
    assert_eq!(m.count_tokens("seismic traces"), 3, "seismic trace ##s");
    let e = m.embed(&[TEXTS[2], "we see"]).unwrap();
    assert_eq!((e[0].tokens, e[0].truncated), (12, true));
    assert_eq!((e[1].tokens, e[1].truncated), (4, false));
    // max_seq_length is capped by max_position_embeddings (64).
    let d = tiny(1000, "mean_tokens");
    let m = SentenceTransformer::load(d.path(), cpu()).unwrap();
    assert_eq!(m.max_seq_len(), 64);
}

#[test]
fn batching_and_order_do_not_change_results() {
    for pooling in [
        "mean_tokens",
        "cls_token",
        "max_tokens",
        "mean_sqrt_len_tokens",
    ] {
        let d = tiny(32, pooling);
        let mut m = SentenceTransformer::load(d.path(), cpu()).unwrap();
        let single: Vec<Vec<f32>> = TEXTS
            .iter()
            .map(|t| m.embed(&[t]).unwrap().remove(0).vector)
            .collect();
        for b in [1, 2, 3, 64] {
            m.set_batch_size(b);
            let all = m.embed(TEXTS).unwrap();
            assert_eq!(all.len(), TEXTS.len());
            for (k, e) in all.iter().enumerate() {
                assert_eq!(e.vector.len(), 16);
                let n: f32 = e.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((n - 1.0).abs() < 1e-5, "{pooling}: norm {n}");
                let diff = max_diff(&e.vector, &single[k]);
                assert!(diff <= 1e-5, "{pooling}, batch {b}, text {k}: {diff}");
            }
        }
        // Different texts give different vectors.
        assert!(cosine(&single[0], &single[1]) < 0.999, "{pooling}");
    }
}

#[test]
fn ids_follow_the_files() {
    let a = tiny(16, "mean_tokens");
    let b = tiny(16, "mean_tokens");
    let ma = SentenceTransformer::load(a.path(), cpu()).unwrap();
    let mb = SentenceTransformer::load(b.path(), cpu()).unwrap();
    let tail = |id: &str| id.rsplit(':').next().unwrap().to_string();
    assert!(ma.id().starts_with("st:"));
    assert_eq!(tail(ma.id()), tail(mb.id()), "same files, same hash");
    edit_json(&b.path().join("config.json"), |v| {
        v["layer_norm_eps"] = 1e-6.into()
    });
    let mb = SentenceTransformer::load(b.path(), cpu()).unwrap();
    assert_ne!(tail(ma.id()), tail(mb.id()));
    let name = a.path().file_name().unwrap().to_str().unwrap();
    assert_eq!(ma.id(), format!("st:{name}:{}", tail(ma.id())));
}

#[test]
fn gpu_agrees_with_cpu() {
    let Some(gpu) = gpu() else { return };
    for pooling in ["mean_tokens", "cls_token", "max_tokens"] {
        let d = tiny(32, pooling);
        let c = SentenceTransformer::load(d.path(), cpu()).unwrap();
        let g = SentenceTransformer::load(d.path(), gpu.clone()).unwrap();
        let ec = c.embed(TEXTS).unwrap();
        let eg = g.embed(TEXTS).unwrap();
        for (k, (a, b)) in ec.iter().zip(&eg).enumerate() {
            let diff = max_diff(&a.vector, &b.vector);
            assert!(diff < 1e-4, "{pooling}, text {k}: {diff}");
            assert_eq!(a.tokens, b.tokens);
        }
    }
}

#[test]
fn load_specs() {
    let never = || -> mlp_compute::Result<std::sync::Arc<dyn mlp_compute::Backend>> {
        panic!("the backend is only for model folders")
    };
    let h = mlp_embed::load("hashing", never).unwrap();
    assert_eq!(h.id(), "hashing:v1:dim=384:ngrams=1-2");
    assert_eq!(h.dim(), 384);
    let h = mlp_embed::load("hashing:64", never).unwrap();
    assert_eq!(h.dim(), 64);
    for bad in ["hashing:", "hashing:x", "hashing:0", "hashing:-3"] {
        let e = mlp_embed::load(bad, never).err().unwrap().to_string();
        assert!(e.contains("hashing") || e.contains("dim"), "{bad}: {e}");
    }
    let e = mlp_embed::load("/no/such/folder", never).err().unwrap();
    assert!(matches!(e, EmbedError::File { .. }), "{e}");
    assert!(e.to_string().contains("/no/such/folder"));
    let f = tempfile::NamedTempFile::new().unwrap();
    let e = mlp_embed::load(f.path().to_str().unwrap(), never)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is a file"), "{e}");
    assert!(mlp_embed::load("", never).is_err());
    // A folder: the backend's error is passed on.
    let d = tiny(16, "mean_tokens");
    let e = mlp_embed::load(d.path().to_str().unwrap(), || {
        Err(mlp_compute::ComputeError::Gpu("no adapter".into()))
    })
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("no adapter"), "{e}");
    let m = mlp_embed::load(d.path().to_str().unwrap(), || Ok(cpu())).unwrap();
    assert_eq!(m.dim(), 16);
}

#[test]
fn transformer_module_in_a_subfolder() {
    // Older sentence-transformers folders keep the transformer in `0_Transformer/`.
    let d = tiny(16, "mean_tokens");
    let flat = SentenceTransformer::load(d.path(), cpu()).unwrap();
    let sub = d.path().join("0_Transformer");
    std::fs::create_dir(&sub).unwrap();
    for f in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "sentence_bert_config.json",
    ] {
        std::fs::rename(d.path().join(f), sub.join(f)).unwrap();
    }
    edit_json(&d.path().join("modules.json"), |v| {
        v[0]["path"] = "0_Transformer".into()
    });
    let nested = SentenceTransformer::load(d.path(), cpu()).unwrap();
    assert_eq!(flat.id(), nested.id());
    assert_eq!(flat.embed(TEXTS).unwrap(), nested.embed(TEXTS).unwrap());
}
