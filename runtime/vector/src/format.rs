//! The index file: layout, atomic writing, validated reading. `spec/vector-index.md` has the
//! byte-by-byte description; keep the two in step.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "MLPVIDX\0"
//! 8       4     format version (u32 LE) = 1
//! 12      4     reserved (u32 LE) = 0
//! 16      8     file length in bytes, checksum included (u64 LE)
//! 24      8     header length H (u64 LE)
//! 32      8     ids section length I
//! 40      8     metadata section length D
//! 48      8     vectors section length V
//! 56      8     graph section length G
//! 64      H     header: UTF-8 JSON {"meta": IndexMeta, "graph_layers": [points per upper layer]}
//! ..      I     ids: per item, u32 LE byte length + UTF-8 bytes
//! ..      D     metadata: per item, u32 LE byte length + JSON text
//! ..      V     vectors: count × dim f32 LE (unit length for cosine), insertion order
//! ..      G     graph (u32 LE): order[indexed], layer 0 [indexed × 64], each upper layer
//!               [points × 32]; u32::MAX marks an empty neighbour slot
//! end-32  32    blake3 of every byte before it
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, VectorError};
use crate::graph::{Parts, UPPER_LINKS, ZERO_LINKS};
use crate::index::{Index, IndexMeta, HNSW_M};
use crate::FORMAT_VERSION;

pub(crate) const MAGIC: &[u8; 8] = b"MLPVIDX\0";
const FIXED: usize = 64;
const CHECKSUM: usize = 32;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    meta: IndexMeta,
    graph_layers: Vec<u64>,
}

pub(crate) fn save(index: &Index, path: &Path) -> Result<()> {
    let bytes = encode(index)?;
    write_atomic(path, &bytes)
}

fn encode(index: &Index) -> Result<Vec<u8>> {
    let meta = index.meta().clone();
    let parts = index.graph_parts();
    let header = Header {
        meta,
        graph_layers: parts
            .map(|p| p.layer_lens().into_iter().map(|l| l as u64).collect())
            .unwrap_or_default(),
    };
    let header = serde_json::to_vec(&header)
        .map_err(|e| VectorError::Invalid(format!("cannot encode the index header: {e}")))?;

    let mut ids = Vec::new();
    for id in index.ids() {
        put_blob(&mut ids, id.as_bytes())?;
    }
    let mut metadata = Vec::new();
    for m in index.metadata_values() {
        let text = serde_json::to_vec(m)
            .map_err(|e| VectorError::Invalid(format!("cannot encode metadata: {e}")))?;
        put_blob(&mut metadata, &text)?;
    }
    let (a, b) = index.vector_parts();
    let mut vectors = Vec::with_capacity((a.len() + b.len()) * 4);
    for x in a.iter().chain(b) {
        vectors.extend_from_slice(&x.to_le_bytes());
    }
    let mut graph = Vec::new();
    if let Some(p) = parts {
        let words = p.order.len() + p.zero.len() + p.layers.iter().map(Vec::len).sum::<usize>();
        graph.reserve(words * 4);
        for w in p
            .order
            .iter()
            .chain(&p.zero)
            .chain(p.layers.iter().flatten())
        {
            graph.extend_from_slice(&w.to_le_bytes());
        }
    }

    let total =
        FIXED + header.len() + ids.len() + metadata.len() + vectors.len() + graph.len() + CHECKSUM;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for len in [
        total,
        header.len(),
        ids.len(),
        metadata.len(),
        vectors.len(),
        graph.len(),
    ] {
        out.extend_from_slice(&(len as u64).to_le_bytes());
    }
    debug_assert_eq!(out.len(), FIXED);
    for section in [&header, &ids, &metadata, &vectors, &graph] {
        out.extend_from_slice(section);
    }
    let hash = blake3::hash(&out);
    out.extend_from_slice(hash.as_bytes());
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

fn put_blob(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| VectorError::Invalid("an id or metadata value is over 4 GiB".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, and renames it over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| VectorError::Invalid(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(VectorError::io(path, e));
    }
    Ok(())
}

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn load(path: &Path) -> Result<Index> {
    let bytes = fs::read(path).map_err(|e| VectorError::io(path, e))?;
    decode(path, &bytes)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Index> {
    let corrupt = |msg: String| VectorError::corrupt(path, msg);
    let actual = bytes.len() as u64;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(VectorError::BadMagic {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() < FIXED + CHECKSUM {
        return Err(VectorError::Truncated {
            path: path.to_path_buf(),
            expected: (FIXED + CHECKSUM) as u64,
            actual,
        });
    }
    let declared = u64_at(bytes, 16);
    let body = &bytes[..bytes.len() - CHECKSUM];
    if blake3::hash(body).as_bytes() != &bytes[bytes.len() - CHECKSUM..] {
        if declared > actual {
            return Err(VectorError::Truncated {
                path: path.to_path_buf(),
                expected: declared,
                actual,
            });
        }
        return Err(VectorError::Checksum {
            path: path.to_path_buf(),
        });
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(VectorError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if u32_at(bytes, 12) != 0 {
        return Err(corrupt("reserved header field is not zero".into()));
    }
    if declared != actual {
        return Err(corrupt(format!(
            "header declares {declared} bytes, file has {actual}"
        )));
    }
    let lens: Vec<u64> = (0..5).map(|i| u64_at(bytes, 24 + 8 * i)).collect();
    let sum = lens
        .iter()
        .try_fold((FIXED + CHECKSUM) as u64, |acc, &l| acc.checked_add(l));
    if sum != Some(actual) {
        return Err(corrupt(format!(
            "section lengths {lens:?} do not add up to the file length {actual}"
        )));
    }
    // Every section now lies inside the file, so usize conversions are safe.
    let mut at = FIXED;
    let mut sections = lens.iter().map(|&l| {
        let s = &body[at..at + l as usize];
        at += l as usize;
        s
    });
    let (header, ids_s, meta_s, vec_s, graph_s) = (
        sections.next().unwrap_or_default(),
        sections.next().unwrap_or_default(),
        sections.next().unwrap_or_default(),
        sections.next().unwrap_or_default(),
        sections.next().unwrap_or_default(),
    );

    let header: Header =
        serde_json::from_slice(header).map_err(|e| corrupt(format!("header is not valid: {e}")))?;
    let meta = header.meta;
    if meta.format_version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "header says format version {}, file says {version}",
            meta.format_version
        )));
    }
    let dim = meta.dim;
    let count = meta.count;
    if dim == 0 {
        return Err(corrupt("dimension 0".into()));
    }
    if meta.hnsw_m != HNSW_M {
        return Err(corrupt(format!(
            "graph M is {}, expected {HNSW_M}",
            meta.hnsw_m
        )));
    }
    // Vectors first: they bound `count` by the file size before anything is allocated.
    let want_vec = (count as u64)
        .checked_mul(dim as u64)
        .and_then(|x| x.checked_mul(4));
    if want_vec != Some(vec_s.len() as u64) {
        return Err(corrupt(format!(
            "vectors section has {} bytes, expected count {count} × dimension {dim} × 4",
            vec_s.len()
        )));
    }
    if count >= u32::MAX as usize - 1 {
        return Err(corrupt(format!("count {count} is too large")));
    }
    if meta.indexed > count || (meta.params.exact && meta.indexed != 0) {
        return Err(corrupt(format!(
            "{} indexed vectors for {count} vectors (exact: {})",
            meta.indexed, meta.params.exact
        )));
    }
    let n_g = meta.indexed;
    let layers = header.graph_layers;
    let mut words: u64 = 0;
    if n_g > 0 {
        words = n_g as u64 * (1 + ZERO_LINKS as u64);
        let mut below = n_g as u64;
        for &l in &layers {
            if l == 0 || l > below {
                return Err(corrupt(format!(
                    "graph layer sizes {layers:?} are not nested under {n_g} points"
                )));
            }
            below = l;
            words += l * UPPER_LINKS as u64;
        }
    } else if !layers.is_empty() {
        return Err(corrupt("graph layers without graph points".into()));
    }
    if words.checked_mul(4) != Some(graph_s.len() as u64) {
        return Err(corrupt(format!(
            "graph section has {} bytes, expected {} for {n_g} points and layers {layers:?}",
            graph_s.len(),
            words * 4
        )));
    }

    let ids = read_blobs(ids_s, count, "ids")
        .map_err(corrupt)?
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            String::from_utf8(b.to_vec()).map_err(|_| corrupt(format!("id {i} is not valid UTF-8")))
        })
        .collect::<Result<Vec<String>>>()?;
    if let Some(i) = ids.iter().position(String::is_empty) {
        return Err(corrupt(format!("id {i} is empty")));
    }
    let metadata = read_blobs(meta_s, count, "metadata")
        .map_err(corrupt)?
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            serde_json::from_slice(b)
                .map_err(|e| corrupt(format!("metadata of item {i} is not valid JSON: {e}")))
        })
        .collect::<Result<Vec<serde_json::Value>>>()?;

    let mut vectors = Vec::with_capacity(count * dim);
    for (i, c) in vec_s.chunks_exact(4).enumerate() {
        let x = f32::from_le_bytes(c.try_into().expect("4 bytes"));
        if !x.is_finite() {
            return Err(corrupt(format!(
                "vector {} has a non-finite value at position {}",
                i / dim,
                i % dim
            )));
        }
        vectors.push(x);
    }

    let parts = if n_g > 0 {
        let mut w = graph_s
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")));
        let order: Vec<u32> = w.by_ref().take(n_g).collect();
        let zero: Vec<u32> = w.by_ref().take(n_g * ZERO_LINKS).collect();
        let layers: Vec<Vec<u32>> = layers
            .iter()
            .map(|&l| w.by_ref().take(l as usize * UPPER_LINKS).collect())
            .collect();
        Some(Parts {
            order,
            zero,
            layers,
        })
    } else {
        None
    };
    if !meta.params.exact && n_g == 0 && count > 0 {
        // Allowed: everything is in the exact tail (e.g. a graph that was never built).
    }
    Index::from_parts(meta, ids, metadata, vectors, parts).map_err(corrupt)
}

/// Splits `count` length-prefixed blobs; the section must hold exactly them.
fn read_blobs<'a>(
    s: &'a [u8],
    count: usize,
    what: &str,
) -> std::result::Result<Vec<&'a [u8]>, String> {
    // Each blob takes at least 4 bytes, so `count` is bounded by the section's size.
    if count > s.len() / 4 {
        return Err(format!(
            "{what} section ({} bytes) is too small for {count} items",
            s.len()
        ));
    }
    let mut out = Vec::with_capacity(count);
    let mut at = 0usize;
    for i in 0..count {
        if s.len() - at < 4 {
            return Err(format!("{what} section ends inside item {i}"));
        }
        let len = u32_at(s, at) as usize;
        at += 4;
        if s.len() - at < len {
            return Err(format!(
                "{what} item {i} ({len} bytes) runs past the section"
            ));
        }
        out.push(&s[at..at + len]);
        at += len;
    }
    if at != s.len() {
        return Err(format!(
            "{what} section has {} bytes after its {count} items",
            s.len() - at
        ));
    }
    Ok(out)
}
