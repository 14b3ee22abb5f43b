//! The BERT encoder on an `mlp-compute` backend: configuration, weights (uploaded once) and the
//! forward pass of one padded batch.
//!
//! Per batch of `b` token sequences padded to `s` (`n = b * s` rows of `h` features):
//! embeddings `word[id] + type[0] + position[j]`, LayerNorm; per layer `q, k, v = x Wᵀ + bias`,
//! masked multi-head attention (padding keys masked), output projection, residual + LayerNorm,
//! `gelu(x W1ᵀ + b1) W2ᵀ + b2`, residual + LayerNorm. Pooling weights `[b, 1, s]` times the
//! last hidden state `[b, s, h]` give mean, CLS and mean-sqrt-len pooling on the device; max
//! pooling downloads the hidden state.

use std::path::Path;
use std::sync::Arc;

use mlp_compute::op::numel;
use mlp_compute::{Activation, Backend, BufId, Op, Tensor};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::error::{file_err, unsupported, EmbedError, Result};

/// The fields of a BERT `config.json` the encoder needs.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f32,
    pub hidden_act: Activation,
}

impl BertConfig {
    /// Parses and checks `config.json` (its path is named in every error).
    pub fn from_json(v: &Value, path: &Path) -> Result<BertConfig> {
        let obj = v
            .as_object()
            .ok_or_else(|| file_err(path, "malformed: expected a JSON object"))?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str);
        match s("model_type") {
            Some("bert") => {}
            Some(other) => {
                return Err(unsupported(
                    path,
                    format!(
                    "model_type `{other}`; only BERT encoders (model_type \"bert\") are supported"
                ),
                ))
            }
            None => {
                let bert_arch = obj
                    .get("architectures")
                    .and_then(Value::as_array)
                    .is_some_and(|a| {
                        a.iter()
                            .any(|x| x.as_str().is_some_and(|x| x.starts_with("Bert")))
                    });
                if !bert_arch {
                    return Err(unsupported(
                        path,
                        "no model_type and no Bert* architecture; only BERT encoders are supported",
                    ));
                }
            }
        }
        if obj.get("is_decoder").and_then(Value::as_bool) == Some(true) {
            return Err(unsupported(
                path,
                "is_decoder is true; only encoders are supported",
            ));
        }
        if let Some(p) = s("position_embedding_type") {
            if p != "absolute" {
                return Err(unsupported(
                    path,
                    format!("position_embedding_type `{p}`; only \"absolute\" is supported"),
                ));
            }
        }
        let int = |k: &str, default: Option<usize>| -> Result<usize> {
            match obj.get(k) {
                None => default.ok_or_else(|| file_err(path, format!("field `{k}` is missing"))),
                Some(x) => x
                    .as_u64()
                    .filter(|&x| x > 0 && x <= u32::MAX as u64)
                    .map(|x| x as usize)
                    .ok_or_else(|| {
                        file_err(
                            path,
                            format!("field `{k}` must be a positive integer, got {x}"),
                        )
                    }),
            }
        };
        let hidden_act = match s("hidden_act").unwrap_or("gelu") {
            "gelu" | "gelu_python" => Activation::Gelu,
            "relu" => Activation::Relu,
            other => {
                return Err(unsupported(
                    path,
                    format!("hidden_act `{other}`; supported: \"gelu\" (exact, erf) and \"relu\""),
                ))
            }
        };
        let layer_norm_eps = match obj.get("layer_norm_eps") {
            None => 1e-12,
            Some(x) => x
                .as_f64()
                .filter(|e| e.is_finite() && *e > 0.0)
                .ok_or_else(|| {
                    file_err(
                        path,
                        format!("field `layer_norm_eps` must be a positive number, got {x}"),
                    )
                })? as f32,
        };
        let c = BertConfig {
            hidden_size: int("hidden_size", None)?,
            num_hidden_layers: int("num_hidden_layers", None)?,
            num_attention_heads: int("num_attention_heads", None)?,
            intermediate_size: int("intermediate_size", None)?,
            vocab_size: int("vocab_size", None)?,
            max_position_embeddings: int("max_position_embeddings", None)?,
            type_vocab_size: int("type_vocab_size", Some(2))?,
            layer_norm_eps,
            hidden_act,
        };
        if c.hidden_size % c.num_attention_heads != 0 {
            return Err(file_err(
                path,
                format!(
                    "hidden_size {} is not divisible by num_attention_heads {}",
                    c.hidden_size, c.num_attention_heads
                ),
            ));
        }
        Ok(c)
    }
}

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the tokens (special tokens included, padding excluded).
    Mean,
    /// The first token (`[CLS]`).
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
    /// Sum over the tokens divided by the square root of their number.
    MeanSqrtLen,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
            Pooling::MeanSqrtLen => "mean_sqrt_len",
        }
    }
}

struct Linear {
    w: Tensor,
    b: Tensor,
}

struct Norm {
    g: Tensor,
    b: Tensor,
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln1: Norm,
    ffn_in: Linear,
    ffn_out: Linear,
    ln2: Norm,
}

/// The encoder's weights on a backend (freed on drop).
pub struct BertModel {
    backend: Arc<dyn Backend>,
    config: BertConfig,
    word: Tensor,
    pos: Tensor,
    typ: Tensor,
    ln: Norm,
    layers: Vec<Layer>,
    bufs: Vec<BufId>,
}

impl Drop for BertModel {
    fn drop(&mut self) {
        for b in &self.bufs {
            self.backend.free(*b);
        }
    }
}

/// Reads a tensor as `f32` (F32, F16 and BF16 are accepted).
fn tensor_f32(st: &SafeTensors<'_>, name: &str, shape: &[usize], path: &Path) -> Result<Vec<f32>> {
    let t = st
        .tensor(name)
        .map_err(|_| file_err(path, format!("no tensor `{name}`")))?;
    if t.shape() != shape {
        return Err(file_err(
            path,
            format!(
                "tensor `{name}` has shape {:?}, config.json implies {shape:?}",
                t.shape()
            ),
        ));
    }
    let d = t.data();
    let v: Vec<f32> = match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        other => {
            return Err(file_err(
                path,
                format!("tensor `{name}` has dtype {other:?}; expected F32, F16 or BF16"),
            ))
        }
    };
    if v.len() != numel(shape) {
        return Err(file_err(
            path,
            format!(
                "tensor `{name}` holds {} values, expected {}",
                v.len(),
                numel(shape)
            ),
        ));
    }
    Ok(v)
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: m * 2^-24.
            let v = m as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

impl BertModel {
    /// Reads every tensor the config implies from `model.safetensors` (at `path`) and uploads
    /// it to `backend`.
    pub fn load(
        backend: Arc<dyn Backend>,
        config: BertConfig,
        bytes: &[u8],
        path: &Path,
    ) -> Result<BertModel> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| file_err(path, format!("malformed safetensors: {e}")))?;
        let prefix = if st.tensor("embeddings.word_embeddings.weight").is_ok() {
            ""
        } else if st.tensor("bert.embeddings.word_embeddings.weight").is_ok() {
            "bert."
        } else {
            return Err(file_err(
                path,
                "no tensor `embeddings.word_embeddings.weight` (nor `bert.embeddings.word_embeddings.weight`): not a BERT checkpoint",
            ));
        };
        let mut model = BertModel {
            backend: backend.clone(),
            config: config.clone(),
            word: Tensor::new(BufId(0), vec![0]),
            pos: Tensor::new(BufId(0), vec![0]),
            typ: Tensor::new(BufId(0), vec![0]),
            ln: Norm {
                g: Tensor::new(BufId(0), vec![0]),
                b: Tensor::new(BufId(0), vec![0]),
            },
            layers: Vec::new(),
            bufs: Vec::new(),
        };
        // Every buffer goes into model.bufs as soon as it exists, so an error frees them.
        let mut up = |name: String, shape: Vec<usize>| -> Result<Tensor> {
            let data = tensor_f32(&st, &format!("{prefix}{name}"), &shape, path)?;
            let buf = backend.alloc(data.len())?;
            model.bufs.push(buf);
            backend.upload(buf, &data)?;
            Ok(Tensor::new(buf, shape))
        };
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let lin = |up: &mut dyn FnMut(String, Vec<usize>) -> Result<Tensor>,
                   name: &str,
                   out: usize,
                   inp: usize|
         -> Result<Linear> {
            Ok(Linear {
                w: up(format!("{name}.weight"), vec![out, inp])?,
                b: up(format!("{name}.bias"), vec![out])?,
            })
        };
        let norm = |up: &mut dyn FnMut(String, Vec<usize>) -> Result<Tensor>,
                    name: &str|
         -> Result<Norm> {
            Ok(Norm {
                g: up(format!("{name}.weight"), vec![h])?,
                b: up(format!("{name}.bias"), vec![h])?,
            })
        };
        let word = up(
            "embeddings.word_embeddings.weight".into(),
            vec![config.vocab_size, h],
        )?;
        let pos = up(
            "embeddings.position_embeddings.weight".into(),
            vec![config.max_position_embeddings, h],
        )?;
        let typ = up(
            "embeddings.token_type_embeddings.weight".into(),
            vec![config.type_vocab_size, h],
        )?;
        let ln = norm(&mut up, "embeddings.LayerNorm")?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                q: lin(&mut up, &format!("{p}.attention.self.query"), h, h)?,
                k: lin(&mut up, &format!("{p}.attention.self.key"), h, h)?,
                v: lin(&mut up, &format!("{p}.attention.self.value"), h, h)?,
                o: lin(&mut up, &format!("{p}.attention.output.dense"), h, h)?,
                ln1: norm(&mut up, &format!("{p}.attention.output.LayerNorm"))?,
                ffn_in: lin(&mut up, &format!("{p}.intermediate.dense"), i, h)?,
                ffn_out: lin(&mut up, &format!("{p}.output.dense"), h, i)?,
                ln2: norm(&mut up, &format!("{p}.output.LayerNorm"))?,
            });
        }
        model.word = word;
        model.pos = pos;
        model.typ = typ;
        model.ln = ln;
        model.layers = layers;
        Ok(model)
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Runs the encoder on `seqs` (token ids, at most `max_position_embeddings` each, at least
    /// one token each) padded to the longest, and pools each sequence. The returned vectors
    /// are not normalised.
    pub fn forward(
        &self,
        ws: &mut Workspace,
        seqs: &[&[u32]],
        pooling: Pooling,
    ) -> Result<Vec<Vec<f32>>> {
        let b = seqs.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let s = seqs.iter().map(|q| q.len()).max().unwrap_or(0);
        if s == 0 || s > self.config.max_position_embeddings {
            return Err(EmbedError::Input(format!(
                "BERT forward: sequences must have 1 to {} tokens, the longest has {s}",
                self.config.max_position_embeddings
            )));
        }
        let c = &self.config;
        let (h, inter) = (c.hidden_size, c.intermediate_size);
        let n = b * s;
        ws.ensure(&self.backend, n, h, inter)?;
        let be = self.backend.as_ref();

        // Host-side inputs.
        let mut ids = vec![0f32; n];
        let mut pos = vec![0f32; n];
        let mut mask = vec![0f32; n];
        let mut pool = vec![0f32; n];
        for (r, q) in seqs.iter().enumerate() {
            let len = q.len().max(1) as f32;
            for (j, &id) in q.iter().enumerate() {
                ids[r * s + j] = id as f32;
                mask[r * s + j] = 1.0;
                pool[r * s + j] = match pooling {
                    Pooling::Mean => 1.0 / len,
                    Pooling::MeanSqrtLen => 1.0 / len.sqrt(),
                    Pooling::Cls => f32::from(j == 0),
                    Pooling::Max => 0.0,
                };
            }
            for j in 0..s {
                pos[r * s + j] = j as f32;
            }
        }
        be.upload(ws.ids, &ids)?;
        be.upload(ws.pos, &pos)?;
        be.upload(ws.mask, &mask)?;
        be.upload(ws.pool, &pool)?;
        // Token types are all 0: ws.typ stays zero-filled.

        let t = |buf: BufId, shape: &[usize]| Tensor::new(buf, shape.to_vec());
        let rows = |buf: BufId| t(buf, &[n, h]);
        let bsh = |buf: BufId| t(buf, &[b, s, h]);
        let d = |op: &Op, i: &[&Tensor], o: &[&Tensor]| be.dispatch(op, i, o);
        let mm = Op::MatMul {
            trans_a: false,
            trans_b: true,
        };
        let bias = Op::BiasAdd { axis: 1 };
        let lnop = Op::LayerNorm {
            eps: c.layer_norm_eps,
        };
        let (x, a, q, k, v, t1, t2) = (ws.x, ws.a, ws.q, ws.k, ws.v, ws.t1, ws.t2);
        let (f1, f2) = (t(ws.f1, &[n, inter]), t(ws.f2, &[n, inter]));
        let (mean, invstd) = (t(ws.mean, &[n]), t(ws.invstd, &[n]));
        let ids_t = t(ws.ids, &[b, s]);

        // Embeddings: word + token type, + position, LayerNorm.
        d(&Op::Embedding, &[&ids_t, &self.word], &[&bsh(t1)])?;
        d(
            &Op::Embedding,
            &[&t(ws.typ, &[b, s]), &self.typ],
            &[&bsh(t2)],
        )?;
        d(&Op::Add, &[&rows(t1), &rows(t2)], &[&rows(q)])?;
        d(
            &Op::Embedding,
            &[&t(ws.pos, &[b, s]), &self.pos],
            &[&bsh(t1)],
        )?;
        d(&Op::Add, &[&rows(q), &rows(t1)], &[&rows(t2)])?;
        d(
            &lnop,
            &[&rows(t2), &self.ln.g, &self.ln.b],
            &[&rows(x), &mean, &invstd],
        )?;

        let linear = |inp: &Tensor, l: &Linear, tmp: &Tensor, out: &Tensor| -> Result<()> {
            d(&mm, &[inp, &l.w], &[tmp])?;
            d(&bias, &[tmp, &l.b], &[out])?;
            Ok(())
        };
        let mask_t = t(ws.mask, &[b, s]);
        for layer in &self.layers {
            linear(&rows(x), &layer.q, &rows(t1), &rows(q))?;
            linear(&rows(x), &layer.k, &rows(t1), &rows(k))?;
            linear(&rows(x), &layer.v, &rows(t1), &rows(v))?;
            d(
                &Op::Attention {
                    heads: c.num_attention_heads,
                },
                &[&bsh(q), &bsh(k), &bsh(v), &mask_t],
                &[&bsh(t2)],
            )?;
            linear(&rows(t2), &layer.o, &rows(t1), &rows(q))?;
            d(&Op::Add, &[&rows(q), &rows(x)], &[&rows(t1)])?;
            d(
                &lnop,
                &[&rows(t1), &layer.ln1.g, &layer.ln1.b],
                &[&rows(a), &mean, &invstd],
            )?;
            linear(&rows(a), &layer.ffn_in, &f1, &f2)?;
            d(&Op::Act(c.hidden_act), &[&f2], &[&f1])?;
            linear(&f1, &layer.ffn_out, &rows(t1), &rows(t2))?;
            d(&Op::Add, &[&rows(t2), &rows(a)], &[&rows(t1)])?;
            d(
                &lnop,
                &[&rows(t1), &layer.ln2.g, &layer.ln2.b],
                &[&rows(x), &mean, &invstd],
            )?;
        }

        if pooling == Pooling::Max {
            let hid = be.download(x)?;
            return Ok(seqs
                .iter()
                .enumerate()
                .map(|(r, q)| {
                    let mut m = vec![f32::NEG_INFINITY; h];
                    for j in 0..q.len() {
                        let row = &hid[(r * s + j) * h..(r * s + j + 1) * h];
                        for (o, &v) in m.iter_mut().zip(row) {
                            *o = o.max(v);
                        }
                    }
                    m
                })
                .collect());
        }
        let out = t(ws.out, &[b, 1, h]);
        d(
            &Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            &[&t(ws.pool, &[b, 1, s]), &bsh(x)],
            &[&out],
        )?;
        let pooled = be.download(ws.out)?;
        Ok(pooled[..b * h].chunks(h).map(<[f32]>::to_vec).collect())
    }
}

/// Activation buffers for batches of up to `rows` token rows (freed on drop).
pub struct Workspace {
    backend: Arc<dyn Backend>,
    rows: usize,
    x: BufId,
    a: BufId,
    q: BufId,
    k: BufId,
    v: BufId,
    t1: BufId,
    t2: BufId,
    f1: BufId,
    f2: BufId,
    mean: BufId,
    invstd: BufId,
    ids: BufId,
    pos: BufId,
    typ: BufId,
    mask: BufId,
    pool: BufId,
    out: BufId,
    all: Vec<BufId>,
}

impl Workspace {
    pub fn new(backend: Arc<dyn Backend>) -> Workspace {
        let z = BufId(0);
        Workspace {
            backend,
            rows: 0,
            x: z,
            a: z,
            q: z,
            k: z,
            v: z,
            t1: z,
            t2: z,
            f1: z,
            f2: z,
            mean: z,
            invstd: z,
            ids: z,
            pos: z,
            typ: z,
            mask: z,
            pool: z,
            out: z,
            all: Vec::new(),
        }
    }

    fn release(&mut self) {
        for b in self.all.drain(..) {
            self.backend.free(b);
        }
        self.rows = 0;
    }

    /// Makes room for `n` rows of `h` features (`inter` in the feed-forward layer).
    fn ensure(
        &mut self,
        backend: &Arc<dyn Backend>,
        n: usize,
        h: usize,
        inter: usize,
    ) -> Result<()> {
        if !Arc::ptr_eq(backend, &self.backend) {
            return Err(EmbedError::Input(
                "BERT forward: workspace belongs to another backend".into(),
            ));
        }
        if n <= self.rows {
            return Ok(());
        }
        self.release();
        let be = self.backend.clone();
        let mut alloc = |len: usize| -> Result<BufId> {
            let buf = be.alloc(len.max(1))?;
            self.all.push(buf);
            Ok(buf)
        };
        let nh = n * h;
        self.x = alloc(nh)?;
        self.a = alloc(nh)?;
        self.q = alloc(nh)?;
        self.k = alloc(nh)?;
        self.v = alloc(nh)?;
        self.t1 = alloc(nh)?;
        self.t2 = alloc(nh)?;
        self.f1 = alloc(n * inter)?;
        self.f2 = alloc(n * inter)?;
        self.mean = alloc(n)?;
        self.invstd = alloc(n)?;
        self.ids = alloc(n)?;
        self.pos = alloc(n)?;
        self.typ = alloc(n)?;
        self.mask = alloc(n)?;
        self.pool = alloc(n)?;
        // Pooled output: at most n sequences of h.
        self.out = alloc(nh)?;
        self.rows = n;
        Ok(())
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        self.release();
    }
}
