//! The feature-hashing embedder: signed hashing of lowercased word n-grams, L2-normalised.
//!
//! Scheme (version 1, part of the id; changing any step needs a new version):
//! 1. Words are maximal runs of Unicode alphanumeric characters (`char::is_alphanumeric`),
//!    except that every CJK ideograph is a word on its own (as BERT's tokenizer does); each
//!    word is lowercased with Unicode's full lowercase mapping (`str::to_lowercase`).
//! 2. For each `n` in `lo..=hi`, every run of `n` consecutive words, joined by one space, is an
//!    n-gram.
//! 3. Each n-gram's UTF-8 bytes are hashed with BLAKE3 keyed by [`KEY`] (a fixed key, so the
//!    result is the same on every run and platform). The first 8 bytes, little-endian, modulo
//!    `dim` give the bucket; the lowest bit of byte 8 gives the sign (`1` is negative).
//! 4. The vector is the signed count per bucket, divided by its L2 norm (computed in `f64`).
//!    A text without words is the zero vector (it has no direction; cosine with it is 0).

use std::sync::Arc;

use crate::error::{EmbedError, Result};
use crate::{Embedder, Embedding};

/// The BLAKE3 key of the n-gram hash: the ASCII bytes `mlp-embed/hashing/v1` padded with
/// zeros to 32 bytes.
pub const KEY: [u8; 32] = *b"mlp-embed/hashing/v1\0\0\0\0\0\0\0\0\0\0\0\0";

/// Largest n-gram order accepted.
pub const MAX_NGRAM: usize = 16;

/// Feature hashing of word n-grams.
#[derive(Clone, Debug)]
pub struct HashingEmbedder {
    dim: usize,
    ngrams: (usize, usize),
    id: String,
}

impl HashingEmbedder {
    /// An embedder of `dim` dimensions over word n-grams of orders `ngrams.0..=ngrams.1`
    /// (`(1, 2)`: words and word pairs).
    pub fn new(dim: usize, ngrams: (usize, usize)) -> Result<Self> {
        if dim == 0 {
            return Err(EmbedError::Config(
                "hashing embedder: dim must be at least 1".into(),
            ));
        }
        let (lo, hi) = ngrams;
        if lo == 0 || lo > hi || hi > MAX_NGRAM {
            return Err(EmbedError::Config(format!(
                "hashing embedder: n-gram orders {lo}-{hi} must satisfy 1 <= lo <= hi <= {MAX_NGRAM}"
            )));
        }
        Ok(HashingEmbedder {
            dim,
            ngrams,
            id: format!("hashing:v1:dim={dim}:ngrams={lo}-{hi}"),
        })
    }

    /// The n-gram orders.
    pub fn ngrams(&self) -> (usize, usize) {
        self.ngrams
    }

    /// The embedding of one text.
    pub fn embed_one(&self, text: &str) -> Embedding {
        let words = words(text);
        let mut acc = vec![0f64; self.dim];
        let (lo, hi) = self.ngrams;
        let mut gram = String::new();
        for n in lo..=hi {
            if n > words.len() {
                break;
            }
            for w in words.windows(n) {
                gram.clear();
                for (k, part) in w.iter().enumerate() {
                    if k > 0 {
                        gram.push(' ');
                    }
                    gram.push_str(part);
                }
                let (bucket, negative) = bucket(gram.as_bytes(), self.dim);
                acc[bucket] += if negative { -1.0 } else { 1.0 };
            }
        }
        let norm = acc.iter().map(|v| v * v).sum::<f64>().sqrt();
        let vector = if norm > 0.0 {
            acc.iter().map(|v| (v / norm) as f32).collect()
        } else {
            vec![0f32; self.dim]
        };
        Embedding {
            vector,
            tokens: words.len(),
            truncated: false,
        }
    }
}

/// The bucket and sign of an n-gram (step 3 of the scheme).
pub fn bucket(gram: &[u8], dim: usize) -> (usize, bool) {
    let h = blake3::keyed_hash(&KEY, gram);
    let b = h.as_bytes();
    let x = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    ((x % dim as u64) as usize, b[8] & 1 == 1)
}

/// Whether `c` is a CJK ideograph (the ranges BERT's tokenizer splits one by one).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// The lowercased words of `text` (step 1 of the scheme).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        let cjk = is_cjk(c);
        if c.is_alphanumeric() && !cjk {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(text[s..i].to_lowercase());
        }
        if cjk {
            out.push(c.to_string());
        }
    }
    if let Some(s) = start {
        out.push(text[s..].to_lowercase());
    }
    out
}

/// Counts words as the hashing embedder splits them.
#[derive(Clone, Copy, Debug, Default)]
pub struct WordTokenizer;

impl mlp_text::Tokenizer for WordTokenizer {
    fn count_tokens(&self, text: &str) -> usize {
        words(text).len()
    }
}

impl Embedder for HashingEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn max_tokens(&self) -> Option<usize> {
        None
    }

    fn count_tokens(&self, text: &str) -> usize {
        words(text).len()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>> {
        use rayon::prelude::*;
        Ok(texts.par_iter().map(|t| self.embed_one(t)).collect())
    }

    fn tokenizer(&self) -> Arc<dyn mlp_text::Tokenizer> {
        Arc::new(WordTokenizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_and_lowercase() {
        assert_eq!(
            words("Hello, WORLD! Straße-42 ÉTÉ"),
            ["hello", "world", "straße", "42", "été"]
        );
        assert_eq!(words("地震波 data"), ["地", "震", "波", "data"]);
        assert!(words(" ,.;\n").is_empty());
    }
}
