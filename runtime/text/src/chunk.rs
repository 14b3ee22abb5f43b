//! Chunkers: split a document's text into [`Chunk`]s that each record their
//! exact byte range in the source.
//!
//! # Pieces, chunks and the overlap rule
//!
//! Every chunker works in two steps.
//!
//! 1. **Pieces.** The text is cut into *pieces*: contiguous, non-empty byte
//!    ranges that together cover the text, each at most `size` units long.
//!    Which cut points are used is what distinguishes the chunkers (every
//!    character for [`fixed`], separators for [`recursive`], sentence ends
//!    for [`sentence`], headings then separators for [`markdown`]). A
//!    stretch that is still longer than `size` when no separator is left is
//!    cut at every character boundary (the hard split), so a cut never falls
//!    inside a UTF-8 character.
//! 2. **Merge.** Chunks are runs of whole consecutive pieces:
//!    * chunk 0 starts at the first piece;
//!    * a chunk takes pieces greedily: it extends by the next piece as long
//!      as its length stays `<= size`;
//!    * when chunk *k* ends at the end of the text, it is the last chunk;
//!    * otherwise chunk *k + 1* starts at the start of the **longest run of
//!      whole pieces at the end of chunk *k*** such that (a) the run's length
//!      is `<= overlap`, (b) the run plus the piece right after chunk *k* is
//!      `<= size`, and (c) the run does not include chunk *k*'s first piece.
//!      The empty run always qualifies (then chunk *k + 1* starts exactly
//!      where chunk *k* ends). The run is found by stepping back one piece
//!      at a time while (a), (b) and (c) hold.
//!
//! Length is measured in the configured [`Unit`] on the exact source text of
//! the span. Consequences, which hold for **every** chunk and are tested:
//! `chunk.text == source[start..end]`; length `<= size`; chunk 0 starts at 0,
//! the last ends at `source.len()`; starts and ends strictly increase; each
//! chunk starts no later than the previous one ends (no gaps); the shared
//! text `source[next.start..prev.end]` is at most `overlap` units and is made
//! of whole pieces. With the [`fixed`] chunker (pieces are characters) and
//! `overlap < size`, every chunk but the last is exactly `size` characters
//! and the overlap is exactly `overlap` characters.
//!
//! [`markdown`] applies the merge to each heading section on its own, so its
//! chunks never span two sections and never overlap across a heading.
//!
//! Chunk ids are the first 16 hex digits of
//! `blake3(doc_id ++ "\0" ++ index ++ "\0" ++ text)`: re-chunking the same
//! document with the same configuration gives the same ids.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Result, TextError};
use crate::short_hash;

/// Counts the tokens of a text the way an embedding model would.
pub trait Tokenizer: Send + Sync {
    /// Number of tokens `text` encodes to.
    fn count_tokens(&self, text: &str) -> usize;
}

/// A stand-in tokenizer: one token per maximal run of non-whitespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhitespaceTokenizer;

impl Tokenizer for WhitespaceTokenizer {
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// What chunk sizes and overlaps are measured in.
#[derive(Clone, Default)]
pub enum Unit {
    /// Unicode scalar values (`str::chars`).
    #[default]
    Chars,
    /// Tokens of the given tokenizer.
    Tokens(Arc<dyn Tokenizer>),
}

impl fmt::Debug for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Chars => f.write_str("Chars"),
            Unit::Tokens(_) => f.write_str("Tokens(..)"),
        }
    }
}

impl Unit {
    /// Length of `text` in this unit.
    pub fn measure(&self, text: &str) -> usize {
        match self {
            Unit::Chars => text.chars().count(),
            Unit::Tokens(t) => t.count_tokens(text),
        }
    }
}

/// Size limit and overlap of a chunker.
#[derive(Debug, Clone)]
pub struct ChunkConfig {
    /// Largest chunk, in `unit`s; at least 1.
    pub size: usize,
    /// Largest shared text between consecutive chunks; less than `size`.
    pub overlap: usize,
    /// What `size` and `overlap` count.
    pub unit: Unit,
}

impl ChunkConfig {
    /// Sizes in characters.
    pub fn chars(size: usize, overlap: usize) -> Self {
        ChunkConfig {
            size,
            overlap,
            unit: Unit::Chars,
        }
    }

    /// Sizes in tokens of `tokenizer`.
    pub fn tokens(size: usize, overlap: usize, tokenizer: Arc<dyn Tokenizer>) -> Self {
        ChunkConfig {
            size,
            overlap,
            unit: Unit::Tokens(tokenizer),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.size == 0 {
            return Err(TextError::Config("size must be at least 1".into()));
        }
        if self.overlap >= self.size {
            return Err(TextError::Config(format!(
                "overlap ({}) must be less than size ({})",
                self.overlap, self.size
            )));
        }
        Ok(())
    }
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// [`chunk_id`] of `doc_id`, `index` and `text`.
    pub id: String,
    /// Id of the document it came from.
    pub doc_id: String,
    /// Position among the document's chunks, from 0.
    pub index: usize,
    /// Byte offset of the first byte in the source text.
    pub start: usize,
    /// Byte offset one past the last byte in the source text.
    pub end: usize,
    /// Exactly `source[start..end]`.
    pub text: String,
    /// Chunker-specific data (Markdown: `heading_path`).
    pub metadata: BTreeMap<String, String>,
}

/// Deterministic chunk id.
pub fn chunk_id(doc_id: &str, index: usize, text: &str) -> String {
    short_hash(&[
        doc_id.as_bytes(),
        index.to_string().as_bytes(),
        text.as_bytes(),
    ])
}

/// A chunk that an embedder with a `limit`-token input would truncate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncationWarning {
    /// The chunk's document.
    pub doc_id: String,
    /// The chunk's index.
    pub index: usize,
    /// The chunk's byte range in the document.
    pub start: usize,
    /// End of that byte range.
    pub end: usize,
    /// Tokens the chunk encodes to.
    pub tokens: usize,
    /// The embedder's input limit.
    pub limit: usize,
}

impl fmt::Display for TruncationWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chunk {} of document {} (bytes {}..{}) has {} tokens; the embedder truncates at {}",
            self.index, self.doc_id, self.start, self.end, self.tokens, self.limit
        )
    }
}

/// Warnings for the chunks longer than `limit` tokens of `tokenizer` (for
/// chunks made in character units, or with another tokenizer). Chunks made
/// with [`Unit::Tokens`] of the same tokenizer and `size <= limit` never get
/// one.
pub fn truncation_warnings(
    chunks: &[Chunk],
    tokenizer: &dyn Tokenizer,
    limit: usize,
) -> Vec<TruncationWarning> {
    chunks
        .iter()
        .filter_map(|c| {
            let tokens = tokenizer.count_tokens(&c.text);
            (tokens > limit).then(|| TruncationWarning {
                doc_id: c.doc_id.clone(),
                index: c.index,
                start: c.start,
                end: c.end,
                tokens,
                limit,
            })
        })
        .collect()
}

/// Separators of [`recursive`] by default: paragraph, line, sentence, word.
pub const DEFAULT_SEPARATORS: &[&str] = &["\n\n", "\n", ". ", " "];

/// Fixed-size chunks: pieces are single characters.
pub fn fixed(doc_id: &str, text: &str, cfg: &ChunkConfig) -> Result<Vec<Chunk>> {
    cfg.validate()?;
    let bounds = char_bounds(text, 0, text.len());
    let spans = merge(text, &bounds, cfg)?;
    Ok(build(doc_id, text, spans.into_iter().map(|s| (s, None))))
}

/// Recursive chunks with [`DEFAULT_SEPARATORS`].
pub fn recursive(doc_id: &str, text: &str, cfg: &ChunkConfig) -> Result<Vec<Chunk>> {
    recursive_with(doc_id, text, cfg, DEFAULT_SEPARATORS)
}

/// Recursive chunks: a stretch longer than `size` is cut after each
/// occurrence of the first separator (kept at the end of the piece before
/// it); pieces still too long are cut by the next separator, and so on, then
/// hard-split.
pub fn recursive_with(
    doc_id: &str,
    text: &str,
    cfg: &ChunkConfig,
    separators: &[&str],
) -> Result<Vec<Chunk>> {
    cfg.validate()?;
    let bounds = recursive_pieces(text, 0, text.len(), cfg, separators);
    let spans = merge(text, &bounds, cfg)?;
    Ok(build(doc_id, text, spans.into_iter().map(|s| (s, None))))
}

/// Sentence-aware chunks: pieces are sentences (cut after `.`, `!`, `?`,
/// `…`, `。`, `！`, `？` plus the whitespace that follows, and after blank
/// lines); sentences longer than `size` are cut at lines, then words, then
/// characters.
pub fn sentence(doc_id: &str, text: &str, cfg: &ChunkConfig) -> Result<Vec<Chunk>> {
    cfg.validate()?;
    let bounds = sentence_pieces(text, cfg);
    let spans = merge(text, &bounds, cfg)?;
    Ok(build(doc_id, text, spans.into_iter().map(|s| (s, None))))
}

/// Markdown-aware chunks: the text is cut at each ATX heading line (outside
/// code fences) into sections, and each section is chunked like
/// [`recursive`] on its own. Each chunk's `heading_path` metadata is the
/// section's enclosing headings joined by ` > ` (absent before the first
/// heading).
pub fn markdown(doc_id: &str, text: &str, cfg: &ChunkConfig) -> Result<Vec<Chunk>> {
    cfg.validate()?;
    let heads = crate::load::markdown_headings(text);
    let mut sections: Vec<(usize, usize, Option<String>)> = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let first = heads.first().map_or(text.len(), |h| h.start);
    if first > 0 {
        sections.push((0, first, None));
    }
    for (i, h) in heads.iter().enumerate() {
        while stack.last().is_some_and(|(level, _)| *level >= h.level) {
            stack.pop();
        }
        stack.push((h.level, h.text.clone()));
        let end = heads.get(i + 1).map_or(text.len(), |n| n.start);
        let path: Vec<&str> = stack.iter().map(|(_, t)| t.as_str()).collect();
        sections.push((h.start, end, Some(path.join(" > "))));
    }
    let mut spans = Vec::new();
    for (start, end, path) in sections {
        let bounds = recursive_pieces(text, start, end, cfg, DEFAULT_SEPARATORS);
        for span in merge(text, &bounds, cfg)? {
            spans.push((span, path.clone()));
        }
    }
    Ok(build(doc_id, text, spans.into_iter()))
}

fn build(
    doc_id: &str,
    text: &str,
    spans: impl Iterator<Item = ((usize, usize), Option<String>)>,
) -> Vec<Chunk> {
    spans
        .enumerate()
        .map(|(index, ((start, end), heading))| {
            let body = &text[start..end];
            let mut metadata = BTreeMap::new();
            if let Some(h) = heading {
                metadata.insert("heading_path".to_string(), h);
            }
            Chunk {
                id: chunk_id(doc_id, index, body),
                doc_id: doc_id.to_string(),
                index,
                start,
                end,
                text: body.to_string(),
                metadata,
            }
        })
        .collect()
}

/// Every character boundary of `text[start..end]`, both ends included.
fn char_bounds(text: &str, start: usize, end: usize) -> Vec<usize> {
    let mut b: Vec<usize> = text[start..end]
        .char_indices()
        .map(|(i, _)| start + i)
        .collect();
    b.push(end);
    b
}

/// Piece boundaries (both ends included) of `text[start..end]` for the
/// recursive chunker; see the module docs.
pub fn recursive_pieces(
    text: &str,
    start: usize,
    end: usize,
    cfg: &ChunkConfig,
    separators: &[&str],
) -> Vec<usize> {
    let mut out = vec![start];
    split_into(text, start, end, cfg, separators, &mut out);
    out
}

/// Appends the inner and end boundaries of `text[start..end]` to `out`.
pub(crate) fn split_into(
    text: &str,
    start: usize,
    end: usize,
    cfg: &ChunkConfig,
    separators: &[&str],
    out: &mut Vec<usize>,
) {
    if start == end {
        return;
    }
    if cfg.unit.measure(&text[start..end]) <= cfg.size {
        out.push(end);
        return;
    }
    let Some((sep, rest)) = separators.split_first() else {
        out.extend(char_bounds(text, start, end).into_iter().skip(1));
        return;
    };
    let mut piece_start = start;
    if !sep.is_empty() {
        for (i, _) in text[start..end].match_indices(sep) {
            let cut = start + i + sep.len();
            if cut > piece_start && cut < end {
                split_into(text, piece_start, cut, cfg, rest, out);
                piece_start = cut;
            }
        }
    }
    split_into(text, piece_start, end, cfg, rest, out);
}

fn sentence_pieces(text: &str, cfg: &ChunkConfig) -> Vec<usize> {
    let mut cuts = vec![0];
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ender = matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？');
        let newline = c == '\n' && chars.peek().is_some_and(|&(_, n)| n == '\n');
        if !(ender || newline) {
            continue;
        }
        let mut cut = i + c.len_utf8();
        let mut saw_space = false;
        while let Some(&(j, n)) = chars.peek() {
            if !n.is_whitespace() {
                break;
            }
            saw_space = true;
            cut = j + n.len_utf8();
            chars.next();
        }
        let cjk = matches!(c, '。' | '！' | '？');
        if (saw_space || cjk || newline) && cut < text.len() {
            cuts.push(cut);
        }
    }
    cuts.push(text.len());
    cuts.dedup();
    let mut out = vec![0];
    for w in cuts.windows(2) {
        split_into(text, w[0], w[1], cfg, &["\n", " "], &mut out);
    }
    out
}

/// The merge step of the module docs over piece boundaries `bounds`
/// (`bounds[0]` and `bounds[last]` are the ends of the region). Returns the
/// byte spans of the chunks.
fn merge(text: &str, bounds: &[usize], cfg: &ChunkConfig) -> Result<Vec<(usize, usize)>> {
    let n = bounds.len().saturating_sub(1);
    let mut out = Vec::new();
    if n == 0 {
        return Ok(out);
    }
    // Character lengths are additive: use prefix sums instead of re-counting.
    let prefix: Option<Vec<usize>> = match cfg.unit {
        Unit::Chars => {
            let mut p = Vec::with_capacity(bounds.len());
            let mut acc = 0;
            p.push(0);
            for w in bounds.windows(2) {
                acc += text[w[0]..w[1]].chars().count();
                p.push(acc);
            }
            Some(p)
        }
        Unit::Tokens(_) => None,
    };
    // Length of pieces i..j.
    let len = |i: usize, j: usize| match &prefix {
        Some(p) => p[j] - p[i],
        None => cfg.unit.measure(&text[bounds[i]..bounds[j]]),
    };
    let mut s = 0;
    // Chunk k+1 always holds the overlap run and the piece after chunk k
    // (rule (b)), so its greedy extension resumes where chunk k ended.
    let mut e = 0;
    loop {
        while e < n && len(s, e + 1) <= cfg.size {
            e += 1;
        }
        if e == s {
            return Err(TextError::Unsplittable {
                start: bounds[s],
                end: bounds[s + 1],
                size: cfg.size,
            });
        }
        out.push((bounds[s], bounds[e]));
        if e == n {
            return Ok(out);
        }
        let mut j = e;
        while j - 1 > s && len(j - 1, e) <= cfg.overlap && len(j - 1, e + 1) <= cfg.size {
            j -= 1;
        }
        s = j;
    }
}
