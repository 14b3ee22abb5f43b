//! Chunking a text file of any size (a 1 GB single line included) in
//! bounded memory.
//!
//! [`chunk_file_streaming`] emits exactly the chunks (byte ranges, texts,
//! ids) that loading the file with [`crate::load::load_text`] and chunking
//! the document with [`crate::chunk::fixed`] or [`crate::chunk::recursive_with`] would
//! give, without ever holding the file in memory. It reads the file twice:
//!
//! 1. **Check and hash.** The file is read in windows; its encoding is
//!    checked as the loaders do (UTF-8, a UTF-8 BOM is stripped; a NUL byte
//!    in the first 8 KiB marks a binary file; invalid UTF-8 is an error
//!    naming its byte offset in the file) and the document id,
//!    `blake3(path ++ "\0" ++ text)`, is computed incrementally. A file with
//!    no text other than whitespace is [`TextError::Empty`]. Nothing is
//!    emitted before this pass succeeds, so a bad file yields no chunks.
//! 2. **Chunk.** The file is read again in windows and cut into the pieces
//!    of the chosen chunker; pieces are merged into chunks by the rule of
//!    `spec/chunking.md`. A window boundary never splits a UTF-8 character:
//!    the bytes of a character cut by a read are carried to the next one.
//!    The text is hashed again; if it differs from pass 1 (the file changed
//!    in between), the call fails after the chunks already emitted.
//!
//! # Why the pieces are the same as in memory
//!
//! The recursive chunker splits a stretch longer than `size` after each
//! occurrence of its first separator and recurses into each part with the
//! remaining separators. A stretch of more than `window` bytes is longer
//! than `size` characters whenever `window >= 4 * size` (a character is at
//! most 4 bytes), which the effective window guarantees; so a stretch that
//! does not fit in the window is known to be split without measuring it.
//! The streaming chunker keeps a stack of such huge stretches (at most one
//! per separator, plus one hard-split stretch), each with the separator
//! whose next occurrence ends it, and hands every part that fits in the
//! window to the in-memory splitter. Separator occurrences are searched from
//! the same positions as `str::match_indices` does in memory (from the start
//! of the stretch, then after each cut), so even self-overlapping
//! separators such as `"\n\n"` cut at the same places.
//!
//! # Memory
//!
//! At most a few windows of text, one chunk plus the next piece for the
//! merge, and the stack: `O(window + size)` bytes whatever the file size.
//! [`StreamReport::peak_buffer_bytes`] reports the largest amount held.
//!
//! Only character units are supported: a token count of an arbitrary
//! [`crate::Tokenizer`] cannot be computed for a stretch that does not fit in
//! memory, so [`Unit::Tokens`] is a configuration error here.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::chunk::{chunk_id, split_into, Chunk, ChunkConfig, Unit, DEFAULT_SEPARATORS};
use crate::error::{Result, TextError};
use crate::load::BINARY_SNIFF_LEN;

/// Default window: 4 MiB.
pub const DEFAULT_WINDOW_BYTES: usize = 4 * 1024 * 1024;

/// Which chunker [`chunk_file_streaming`] reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStrategy<'a> {
    /// [`crate::chunk::fixed`]: pieces are characters.
    Fixed,
    /// [`crate::chunk::recursive_with`] these separators.
    Recursive(&'a [&'a str]),
}

impl StreamStrategy<'static> {
    /// [`crate::chunk::recursive`]: [`crate::chunk::recursive_with`] the
    /// [`DEFAULT_SEPARATORS`].
    pub const RECURSIVE: StreamStrategy<'static> = StreamStrategy::Recursive(DEFAULT_SEPARATORS);
}

/// What a streaming run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// The document id, equal to [`crate::load::document_id`] of the path
    /// and the whole text (and so to the id [`crate::load::load_text`] gives).
    pub doc_id: String,
    /// The file.
    pub path: PathBuf,
    /// Length of the text in bytes (the file less a UTF-8 BOM).
    pub text_bytes: u64,
    /// Number of chunks emitted.
    pub chunks: usize,
    /// The window used: the requested one, raised to `4 * size` if smaller.
    pub window_bytes: usize,
    /// Most bytes this call held in its buffers at once (capacities of the
    /// read buffer, the text window, the merge buffer and piece queue).
    pub peak_buffer_bytes: usize,
}

/// Chunks the text file at `path` like loading it with
/// [`crate::load::load_text`] and chunking it in memory with `strategy`
/// would, calling `on_chunk` with each chunk in order, in memory bounded by
/// [`DEFAULT_WINDOW_BYTES`] and the chunk size (see the module docs). An
/// error from `on_chunk` stops the run and is returned.
pub fn chunk_file_streaming(
    path: &Path,
    cfg: &ChunkConfig,
    strategy: StreamStrategy<'_>,
    on_chunk: impl FnMut(Chunk) -> Result<()>,
) -> Result<StreamReport> {
    chunk_file_streaming_with_window(path, cfg, strategy, DEFAULT_WINDOW_BYTES, on_chunk)
}

/// [`chunk_file_streaming`] with a chosen window (bytes read at a time and
/// largest stretch handed to the in-memory splitter; raised to
/// `4 * cfg.size` if smaller).
pub fn chunk_file_streaming_with_window(
    path: &Path,
    cfg: &ChunkConfig,
    strategy: StreamStrategy<'_>,
    window_bytes: usize,
    on_chunk: impl FnMut(Chunk) -> Result<()>,
) -> Result<StreamReport> {
    cfg.validate()?;
    if let Unit::Tokens(_) = cfg.unit {
        return Err(TextError::Config(
            "the streaming chunker measures chunks in characters only \
             (token counts need the whole stretch in memory)"
                .into(),
        ));
    }
    let window = window_bytes.max(cfg.size.saturating_mul(4)).max(4);
    let key = path.to_string_lossy().into_owned();

    // Pass 1: check the encoding, hash, find the length.
    let mut reader = Utf8Reader::open(path, (window / 4).max(4))?;
    let mut hasher = id_hasher(&key);
    let mut total = 0usize;
    let mut non_blank = false;
    let mut scratch = String::new();
    loop {
        scratch.clear();
        let more = reader.next_into(&mut scratch)?;
        hasher.update(scratch.as_bytes());
        total += scratch.len();
        non_blank = non_blank || scratch.chars().any(|c| !c.is_whitespace());
        if !more {
            break;
        }
    }
    drop(scratch);
    if !non_blank {
        return Err(TextError::Empty {
            path: path.to_path_buf(),
        });
    }
    let doc_id = hasher.finalize().to_hex()[..16].to_string();

    // Pass 2: pieces, merged into chunks.
    // Reads of a quarter window: the window then holds at most the text from
    // `keep` (a separator's length before the current position) to a window
    // and a separator past it, plus one read.
    let block = (window / 4).max(4);
    let mut buf = Window {
        reader: Utf8Reader::open(path, block)?,
        text: String::with_capacity((2 * window + 2 * block + 64).min(total + 8)),
        base: 0,
        eof: false,
        hasher: id_hasher(&key),
        read: 0,
    };
    let mut merger = Merger {
        size: cfg.size,
        overlap: cfg.overlap,
        pieces: VecDeque::new(),
        text: String::new(),
        taken: 0,
        taken_len: 0,
        index: 0,
        doc_id: doc_id.clone(),
        on_chunk,
    };
    let seps: &[&str] = match strategy {
        StreamStrategy::Fixed => &[],
        StreamStrategy::Recursive(s) => s,
    };
    let max_sep = seps.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let mut peak = 0;
    let mut bounds = Vec::new();
    let mut p = 0;
    let mut frames = Vec::new();
    if matches!(strategy, StreamStrategy::Recursive(_)) && total <= window {
        // Small enough for the in-memory splitter as a whole.
        buf.fill(0, total)?;
        split_into(buf.slice(0, total), 0, total, cfg, seps, &mut bounds);
        let mut a = 0;
        for &b in &bounds {
            merger.push(a, b, buf.slice(a, b))?;
            a = b;
        }
        p = total;
        peak = buf.bytes() + merger.bytes();
    } else {
        // The whole text is longer than `size` (or the chunker is `fixed`,
        // whose pieces are characters anyway): split by the first separator.
        frames.push(Frame {
            level: 0,
            term: "",
            found: Some(total),
            scanned: 0,
        });
    }
    let mut ends: Vec<Option<usize>> = Vec::new();
    while p < total {
        let keep = frames
            .iter()
            .filter(|f| f.found.is_none())
            .map(|f| f.scanned)
            .fold(p, usize::min);
        buf.fill(keep, p + window + max_sep)?;
        frame_ends(&mut frames, &buf, &mut ends);
        while ends.last().is_some_and(|e| *e == Some(p)) {
            frames.pop();
            ends.pop();
        }
        let frame = frames
            .last()
            .expect("the root frame ends at the end of the text");
        let fend = *ends.last().expect("one end per frame");
        let level = frame.level;
        peak = peak.max(buf.bytes() + merger.bytes());
        if level >= seps.len() {
            // No separator left: every character is a piece.
            let mut stop = fend.unwrap_or(usize::MAX).min(p + window).min(buf.end());
            while !buf.is_char_boundary(stop) {
                stop -= 1;
            }
            let s = buf.slice(p, stop);
            for (i, c) in s.char_indices() {
                let a = p + i;
                let b = a + c.len_utf8();
                merger.push(a, b, &s[i..i + c.len_utf8()])?;
            }
            p = stop;
            continue;
        }
        let sep = seps[level];
        let hi = (p + window - 1 + sep.len())
            .min(buf.end())
            .min(fend.unwrap_or(usize::MAX));
        let occ_end = if sep.is_empty() {
            None
        } else {
            find(buf.bytes_of(p, hi), sep.as_bytes()).map(|i| p + i + sep.len())
        };
        match occ_end.or(fend) {
            Some(end) if end - p <= window => {
                // The stretch up to the next cut fits: split it in memory.
                bounds.clear();
                split_into(
                    buf.slice(p, end),
                    0,
                    end - p,
                    cfg,
                    &seps[level + 1..],
                    &mut bounds,
                );
                let mut a = p;
                for &b in &bounds {
                    merger.push(a, p + b, buf.slice(a, p + b))?;
                    a = p + b;
                }
                p = end;
            }
            _ => frames.push(Frame {
                level: level + 1,
                term: sep,
                found: occ_end,
                scanned: p,
            }),
        }
    }
    merger.finish()?;
    peak = peak.max(buf.bytes() + merger.bytes());
    buf.finish()?;
    let again = buf.hasher.finalize().to_hex()[..16].to_string();
    if again != doc_id || buf.read != total {
        return Err(TextError::Stream {
            path: path.to_path_buf(),
            message: "the file changed while it was being streamed".into(),
        });
    }
    Ok(StreamReport {
        doc_id,
        path: path.to_path_buf(),
        text_bytes: total as u64,
        chunks: merger.index,
        window_bytes: window,
        peak_buffer_bytes: peak + buf.reader.raw.capacity(),
    })
}

fn id_hasher(key: &str) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(key.as_bytes());
    h.update(&[0]);
    h
}

/// First occurrence of `needle` (non-empty) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last_start {
        let k = hay[i..=last_start].iter().position(|&b| b == first)?;
        i += k;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// A stretch longer than the window that is being cut by `seps[level]`
/// (`level == seps.len()`: cut at every character).
struct Frame<'a> {
    level: usize,
    /// The stretch ends at the end of the first occurrence of `term` at or
    /// after its start, or at its parent's end, whichever comes first
    /// (empty `term`: at its parent's end; the root's end is `found`).
    term: &'a str,
    /// End of that first occurrence, once found.
    found: Option<usize>,
    /// Occurrences of `term` starting before this offset have been searched.
    scanned: usize,
}

/// The end of each frame, where known from the text in the window (`None`:
/// beyond the window). Searches for terminators incrementally.
fn frame_ends(frames: &mut [Frame<'_>], buf: &Window, ends: &mut Vec<Option<usize>>) {
    ends.clear();
    let mut parent: Option<usize> = None;
    for f in frames.iter_mut() {
        let end = if let Some(x) = f.found {
            Some(parent.map_or(x, |pe| x.min(pe)))
        } else if f.term.is_empty() {
            parent
        } else {
            let t = f.term.as_bytes();
            // An occurrence must end within the parent (and the window).
            let limit = parent.map_or(buf.end(), |pe| pe.min(buf.end()));
            if f.scanned + t.len() <= limit {
                match find(buf.bytes_of(f.scanned, limit), t) {
                    Some(i) => f.found = Some(f.scanned + i + t.len()),
                    None => f.scanned = limit + 1 - t.len(),
                }
            }
            match f.found {
                Some(x) => Some(x),
                // Every occurrence that could end within the parent has
                // been searched: the stretch runs to the parent's end.
                None if parent.is_some_and(|pe| pe <= buf.end()) => parent,
                None => None,
            }
        };
        ends.push(end);
        parent = end;
    }
}

/// The part of the text in memory: `text` is the text at byte offsets
/// `base..base + text.len()`.
struct Window {
    reader: Utf8Reader,
    text: String,
    base: usize,
    eof: bool,
    /// Hash of everything read in this pass, to detect a changed file.
    hasher: blake3::Hasher,
    /// Bytes of text read in this pass.
    read: usize,
}

impl Window {
    fn end(&self) -> usize {
        self.base + self.text.len()
    }

    fn bytes(&self) -> usize {
        self.text.capacity()
    }

    fn slice(&self, a: usize, b: usize) -> &str {
        &self.text[a - self.base..b - self.base]
    }

    fn bytes_of(&self, a: usize, b: usize) -> &[u8] {
        &self.text.as_bytes()[a - self.base..b - self.base]
    }

    fn is_char_boundary(&self, i: usize) -> bool {
        self.text.is_char_boundary(i - self.base)
    }

    /// Reads until the text up to `upto` (or the end of the file) is in
    /// memory, dropping the text before `keep` when room is needed.
    fn fill(&mut self, keep: usize, upto: usize) -> Result<()> {
        let mut k = keep.min(self.end()) - self.base;
        while !self.text.is_char_boundary(k) {
            k -= 1;
        }
        while !self.eof && self.end() < upto {
            // Draining moves what is left, so it is done only when the next
            // block would not fit in the capacity reserved at the start
            // (what is kept never exceeds it: see `chunk_file_streaming`).
            if k > 0 && self.text.len() + self.reader.block + 3 > self.text.capacity() {
                self.text.drain(..k);
                self.base += k;
                k = 0;
            }
            let before = self.text.len();
            let more = self.reader.next_into(&mut self.text)?;
            self.hasher.update(&self.text.as_bytes()[before..]);
            self.read += self.text.len() - before;
            self.eof = !more;
        }
        Ok(())
    }

    /// Reads (and hashes) the rest of the file without keeping it.
    fn finish(&mut self) -> Result<()> {
        let mut scratch = String::new();
        while !self.eof {
            scratch.clear();
            self.eof = !self.reader.next_into(&mut scratch)?;
            self.hasher.update(scratch.as_bytes());
            self.read += scratch.len();
        }
        Ok(())
    }
}

/// Reads a file as UTF-8 text in blocks, under the loaders' encoding policy.
struct Utf8Reader {
    file: File,
    path: PathBuf,
    block: usize,
    /// Bytes read but not yet returned (an incomplete character at the end
    /// of the previous block), then the new block.
    raw: Vec<u8>,
    /// File offset of `raw[0]`.
    pos: u64,
    done: bool,
}

impl Utf8Reader {
    /// Opens `path` and checks its start: a UTF-8 BOM is skipped, a UTF-16
    /// BOM is refused, a NUL byte in the first [`BINARY_SNIFF_LEN`] bytes
    /// (without a BOM) marks a binary file.
    fn open(path: &Path, block: usize) -> Result<Self> {
        let io = |source| TextError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let mut head = Vec::with_capacity(BINARY_SNIFF_LEN);
        (&mut file)
            .take(BINARY_SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(io)?;
        let mut reader = Utf8Reader {
            file,
            path: path.to_path_buf(),
            block,
            raw: Vec::new(),
            pos: 0,
            done: false,
        };
        let skip = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err(TextError::Stream {
                path: path.to_path_buf(),
                message: "UTF-16 text cannot be streamed; convert it to UTF-8 \
                          (or load it in memory with mlp_text::load)"
                    .into(),
            });
        } else if let Some(offset) = head.iter().position(|&b| b == 0) {
            return Err(TextError::Binary {
                path: path.to_path_buf(),
                offset,
            });
        } else {
            0
        };
        // Read on from the start of the text in blocks (the head is not
        // kept, so that every read is a block).
        reader
            .file
            .seek(SeekFrom::Start(skip as u64))
            .map_err(|source| TextError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        reader.pos = skip as u64;
        reader.raw.reserve(block + 3);
        Ok(reader)
    }

    /// Appends the next block of text to `out`; `false` once the end of the
    /// file is reached (the last text has then been appended).
    fn next_into(&mut self, out: &mut String) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        // `raw` holds at most an incomplete character (3 bytes) here.
        let mut n = self.raw.len();
        let mut eof = false;
        self.raw.resize(n + self.block, 0);
        while n < self.raw.len() {
            match self.file.read(&mut self.raw[n..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(TextError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        self.raw.truncate(n);
        let valid = match std::str::from_utf8(&self.raw) {
            Ok(_) => self.raw.len(),
            // An incomplete character at the end: wait for the next block.
            Err(e) if e.error_len().is_none() && !eof => e.valid_up_to(),
            Err(e) => {
                return Err(TextError::Encoding {
                    path: self.path.clone(),
                    encoding: "UTF-8",
                    offset: (self.pos as usize) + e.valid_up_to(),
                })
            }
        };
        let text = std::str::from_utf8(&self.raw[..valid]).expect("validated above");
        out.push_str(text);
        self.raw.drain(..valid);
        self.pos += valid as u64;
        if eof {
            self.done = true;
        }
        Ok(!self.done)
    }
}

/// The merge step of `spec/chunking.md` over a stream of pieces, in
/// character units (lengths are additive).
struct Merger<F> {
    size: usize,
    overlap: usize,
    /// Pieces from the current chunk's first on: (start, end, characters).
    pieces: VecDeque<(usize, usize, usize)>,
    /// Text of `pieces`, from the first piece's start.
    text: String,
    /// Pieces in the current chunk so far.
    taken: usize,
    /// Their length.
    taken_len: usize,
    /// Index of the next chunk.
    index: usize,
    doc_id: String,
    on_chunk: F,
}

impl<F: FnMut(Chunk) -> Result<()>> Merger<F> {
    fn bytes(&self) -> usize {
        self.text.capacity() + self.pieces.capacity() * std::mem::size_of::<(usize, usize, usize)>()
    }

    fn push(&mut self, start: usize, end: usize, text: &str) -> Result<()> {
        self.pieces.push_back((start, end, text.chars().count()));
        self.text.push_str(text);
        self.advance(false)
    }

    fn finish(&mut self) -> Result<()> {
        self.advance(true)
    }

    fn advance(&mut self, eof: bool) -> Result<()> {
        loop {
            while self.taken < self.pieces.len()
                && self.taken_len + self.pieces[self.taken].2 <= self.size
            {
                self.taken_len += self.pieces[self.taken].2;
                self.taken += 1;
            }
            if self.taken == self.pieces.len() {
                // The chunk may still grow, unless the text is over.
                if eof && self.taken > 0 {
                    self.emit()?;
                    self.pieces.clear();
                    self.text.clear();
                    self.taken = 0;
                    self.taken_len = 0;
                }
                return Ok(());
            }
            if self.taken == 0 {
                let (start, end, _) = self.pieces[0];
                return Err(TextError::Unsplittable {
                    start,
                    end,
                    size: self.size,
                });
            }
            self.emit()?;
            // Overlap: the longest run of whole pieces at the end of the
            // chunk, not its first piece, within `overlap`, that leaves room
            // for the next piece.
            let next = self.pieces[self.taken].2;
            let mut j = self.taken;
            let mut run = 0;
            while j - 1 > 0
                && run + self.pieces[j - 1].2 <= self.overlap
                && run + self.pieces[j - 1].2 + next <= self.size
            {
                run += self.pieces[j - 1].2;
                j -= 1;
            }
            let dead = self.pieces[j].0 - self.pieces[0].0;
            self.text.drain(..dead);
            self.pieces.drain(..j);
            self.taken -= j;
            self.taken_len = run;
        }
    }

    /// Emits the current chunk (pieces `0..taken`).
    fn emit(&mut self) -> Result<()> {
        let start = self.pieces[0].0;
        let end = self.pieces[self.taken - 1].1;
        let body = &self.text[..end - start];
        let chunk = Chunk {
            id: chunk_id(&self.doc_id, self.index, body),
            doc_id: self.doc_id.clone(),
            index: self.index,
            start,
            end,
            text: body.to_string(),
            metadata: BTreeMap::new(),
        };
        self.index += 1;
        (self.on_chunk)(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn find_bytes() {
        assert_eq!(find(b"abcabc", b"ca"), Some(2));
        assert_eq!(find(b"aab", b"ab"), Some(1));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"\n\n\n", b"\n\n"), Some(0));
        assert_eq!(find(b"xyz", b""), None);
    }
}
