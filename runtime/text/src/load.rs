//! Loaders: bytes on disk to [`Document`]s.
//!
//! Encoding policy (never silently mangled):
//! * a UTF-8 BOM is stripped and the rest must be valid UTF-8;
//! * a UTF-16 LE or BE BOM selects UTF-16; odd length or unpaired surrogates
//!   are errors;
//! * otherwise a NUL byte in the first 8 KiB marks a binary file (error);
//! * otherwise the bytes must be valid UTF-8; the error names the byte offset
//!   of the first invalid sequence (Latin-1, Windows-1252, ... end up here).
//!
//! Documents whose text is empty or only whitespace are rejected with
//! [`TextError::Empty`].
//!
//! PDFs ([`Format::Pdf`]) are not decoded as text: their text layer is
//! extracted page by page (see [`load_pdf`]).
//!
//! Loaders read a file whole, so they refuse files over
//! [`LoadOptions::max_file_bytes`] ([`DEFAULT_MAX_FILE_BYTES`] by default)
//! with [`TextError::TooLarge`] before allocating anything; large text files
//! are chunked with bounded memory by [`crate::stream::chunk_file_streaming`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Result, TextError};
use crate::short_hash;

/// How many leading bytes are searched for NUL to detect binary files.
pub const BINARY_SNIFF_LEN: usize = 8 * 1024;

/// Default for [`LoadOptions::max_file_bytes`]: 256 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Options of the in-memory loaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Largest file (in bytes on disk) a loader reads into memory; larger
    /// files fail with [`TextError::TooLarge`], which points to
    /// [`crate::stream::chunk_file_streaming`].
    pub max_file_bytes: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// One loaded document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// [`document_id`] of the path key and the text.
    pub id: String,
    /// The file it came from.
    pub path: PathBuf,
    /// The decoded text (for HTML: the extracted text).
    pub text: String,
    /// Format-specific metadata; always has `format`.
    pub metadata: BTreeMap<String, String>,
}

/// File formats with a loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The text as it is.
    Text,
    /// The text as it is; headings go to metadata (`title`, `headings`).
    Markdown,
    /// Visible text; `script`, `style`, `noscript`, `template` and `head`
    /// are dropped; `<title>` goes to metadata.
    Html,
    /// One document per non-blank line, text taken from `field`.
    JsonLines { field: String },
    /// The text layer of a PDF, pages in order, separated by a blank line;
    /// metadata `pages`, `page_starts` and (if the PDF has one) `title`.
    Pdf,
}

impl Format {
    /// The format for a file name's extension: `.md`/`.markdown`,
    /// `.html`/`.htm`, `.jsonl`/`.ndjson` (text from `jsonl_field`), `.pdf`,
    /// else text.
    pub fn for_path(path: &Path, jsonl_field: &str) -> Format {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match ext.as_str() {
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" | "xhtml" => Format::Html,
            "jsonl" | "ndjson" => Format::JsonLines {
                field: jsonl_field.to_string(),
            },
            "pdf" => Format::Pdf,
            _ => Format::Text,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::JsonLines { .. } => "jsonl",
            Format::Pdf => "pdf",
        }
    }
}

/// Deterministic document id: first 16 hex digits of
/// `blake3(key ++ "\0" ++ text)`, where `key` is the path (for JSON Lines:
/// `path:line`).
pub fn document_id(key: &str, text: &str) -> String {
    short_hash(&[key.as_bytes(), text.as_bytes()])
}

/// Decode `bytes` read from `path` according to the module's encoding policy.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<String> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(path, rest, 3);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(path, rest, u16::from_le_bytes, "UTF-16LE");
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(path, rest, u16::from_be_bytes, "UTF-16BE");
    }
    let sniff = &bytes[..bytes.len().min(BINARY_SNIFF_LEN)];
    if let Some(offset) = sniff.iter().position(|&b| b == 0) {
        return Err(TextError::Binary {
            path: path.to_path_buf(),
            offset,
        });
    }
    utf8(path, bytes, 0)
}

fn utf8(path: &Path, bytes: &[u8], base: usize) -> Result<String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => Err(TextError::Encoding {
            path: path.to_path_buf(),
            encoding: "UTF-8",
            offset: base + e.valid_up_to(),
        }),
    }
}

fn utf16(
    path: &Path,
    bytes: &[u8],
    unit: fn([u8; 2]) -> u16,
    encoding: &'static str,
) -> Result<String> {
    let err = |offset| TextError::Encoding {
        path: path.to_path_buf(),
        encoding,
        offset,
    };
    if bytes.len() % 2 != 0 {
        return Err(err(2 + bytes.len() - 1));
    }
    let units = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    let mut out = String::with_capacity(bytes.len() / 2);
    let mut pos = 2; // byte offset in the file, after the BOM
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => {
                out.push(c);
                pos += 2 * c.len_utf16();
            }
            Err(_) => return Err(err(pos)),
        }
    }
    Ok(out)
}

/// Reads `path` whole, refusing files over `limit` bytes before allocating.
fn read(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let io = |source| TextError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| TextError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(too_large(size));
    }
    // The file may grow after the size check (or be a special file whose
    // size reads 0): never read more than `limit + 1` bytes.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

fn non_empty(path: &Path, text: String) -> Result<String> {
    if text.trim().is_empty() {
        Err(TextError::Empty {
            path: path.to_path_buf(),
        })
    } else {
        Ok(text)
    }
}

fn document(
    path: &Path,
    text: String,
    mut metadata: BTreeMap<String, String>,
    f: &Format,
) -> Document {
    metadata.insert("format".into(), f.name().into());
    Document {
        id: document_id(&path.to_string_lossy(), &text),
        path: path.to_path_buf(),
        text,
        metadata,
    }
}

/// Load one file in the given format. Text, Markdown, HTML and PDF give one
/// document; JSON Lines gives one per non-blank line. Files over
/// [`DEFAULT_MAX_FILE_BYTES`] are refused ([`TextError::TooLarge`]).
pub fn load_file(path: &Path, format: &Format) -> Result<Vec<Document>> {
    load_file_with(path, format, &LoadOptions::default())
}

/// [`load_file`] with explicit [`LoadOptions`].
pub fn load_file_with(
    path: &Path,
    format: &Format,
    options: &LoadOptions,
) -> Result<Vec<Document>> {
    let bytes = read(path, options.max_file_bytes)?;
    parse_bytes(path, &bytes, format)
}

/// Like [`load_file`] for bytes already in memory (`path` names them).
pub fn parse_bytes(path: &Path, bytes: &[u8], format: &Format) -> Result<Vec<Document>> {
    if *format == Format::Pdf {
        let (text, meta) = crate::pdf::extract(path, bytes)?;
        return Ok(vec![document(path, text, meta, format)]);
    }
    let text = decode(path, bytes)?;
    match format {
        Format::Text => {
            let text = non_empty(path, text)?;
            Ok(vec![document(path, text, BTreeMap::new(), format)])
        }
        Format::Markdown => {
            let text = non_empty(path, text)?;
            let mut meta = BTreeMap::new();
            let heads = markdown_headings(&text);
            if let Some(h) = heads.iter().find(|h| h.level == 1) {
                meta.insert("title".into(), h.text.clone());
            }
            if !heads.is_empty() {
                let lines: Vec<String> = heads
                    .iter()
                    .map(|h| format!("{} {}", "#".repeat(h.level), h.text))
                    .collect();
                meta.insert("headings".into(), lines.join("\n"));
            }
            Ok(vec![document(path, text, meta, format)])
        }
        Format::Html => {
            let (body, title) = html_text(&text);
            let body = non_empty(path, body)?;
            let mut meta = BTreeMap::new();
            if let Some(t) = title {
                meta.insert("title".into(), t);
            }
            Ok(vec![document(path, body, meta, format)])
        }
        Format::JsonLines { field } => parse_jsonl(path, &text, field, format),
        Format::Pdf => unreachable!("PDF is handled before decoding"),
    }
}

/// Load a plain-text file.
pub fn load_text(path: &Path) -> Result<Document> {
    single(load_file(path, &Format::Text)?)
}

/// Load a Markdown file (text as is, headings as metadata).
pub fn load_markdown(path: &Path) -> Result<Document> {
    single(load_file(path, &Format::Markdown)?)
}

/// Load an HTML file (visible text only).
pub fn load_html(path: &Path) -> Result<Document> {
    single(load_file(path, &Format::Html)?)
}

/// Load the text layer of a PDF as one document: pages in order, each
/// trimmed, separated by a blank line (`"\n\n"`). Metadata: `pages` (page
/// count), `page_starts` (comma-separated byte offset in the text where each
/// page begins, so a chunk's page is the last start `<=` its `start`) and
/// `title` (from the PDF's document information, if present).
///
/// Encrypted PDFs (unless the user password is empty), corrupt PDFs and
/// PDFs without extractable text (scanned, image-only: no OCR is done) fail
/// with [`TextError::Pdf`] naming the file; extraction never panics, and
/// structures the extractor would recurse into forever (self-invoking form
/// XObjects, cyclic page trees) are refused before extraction.
pub fn load_pdf(path: &Path) -> Result<Document> {
    single(load_file(path, &Format::Pdf)?)
}

/// Load a JSON Lines file, one document per non-blank line.
pub fn load_jsonl(path: &Path, field: &str) -> Result<Vec<Document>> {
    load_file(
        path,
        &Format::JsonLines {
            field: field.to_string(),
        },
    )
}

fn single(docs: Vec<Document>) -> Result<Document> {
    // Single-document formats always yield exactly one document.
    Ok(docs
        .into_iter()
        .next()
        .expect("single-document format yields one document"))
}

/// Load every file matched by the glob `pattern` (e.g. `docs/**/*.md`), in
/// sorted path order, picking each file's format with [`Format::for_path`].
/// Directories are skipped. Fails on the first bad file, naming it; a
/// pattern that matches no file is an error too.
pub fn load_glob(pattern: &str, jsonl_field: &str) -> Result<Vec<Document>> {
    load_glob_with(pattern, jsonl_field, &LoadOptions::default())
}

/// [`load_glob`] with explicit [`LoadOptions`] (applied to every file).
pub fn load_glob_with(
    pattern: &str,
    jsonl_field: &str,
    options: &LoadOptions,
) -> Result<Vec<Document>> {
    let glob_err = |message: String| TextError::Glob {
        pattern: pattern.to_string(),
        message,
    };
    let paths = glob::glob(pattern).map_err(|e| glob_err(e.to_string()))?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| glob_err(e.to_string()))?;
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(glob_err("matched no files".into()));
    }
    files.sort();
    let mut docs = Vec::new();
    for path in files {
        let format = Format::for_path(&path, jsonl_field);
        docs.extend(load_file_with(&path, &format, options)?);
    }
    Ok(docs)
}

fn parse_jsonl(path: &Path, text: &str, field: &str, format: &Format) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let err = |message: String| TextError::JsonLine {
            path: path.to_path_buf(),
            line: n,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let serde_json::Value::Object(obj) = value else {
            return Err(err("record is not a JSON object".into()));
        };
        let body = match obj.get(field) {
            None => return Err(err(format!("field `{field}` missing"))),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(err(format!("field `{field}` is not a string"))),
        };
        if body.trim().is_empty() {
            return Err(err("empty document".into()));
        }
        let mut meta = BTreeMap::new();
        for (k, v) in &obj {
            if k == field {
                continue;
            }
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(x) => x.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            meta.insert(k.clone(), s);
        }
        meta.insert("line".into(), n.to_string());
        meta.insert("format".into(), format.name().into());
        let key = format!("{}:{n}", path.to_string_lossy());
        docs.push(Document {
            id: document_id(&key, &body),
            path: path.to_path_buf(),
            text: body,
            metadata: meta,
        });
    }
    if docs.is_empty() {
        return Err(TextError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(docs)
}

/// An ATX Markdown heading (`# Title`), outside fenced code blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// 1 to 6.
    pub level: usize,
    /// The heading text, closing `#`s and spaces removed.
    pub text: String,
    /// Byte offset of the start of the heading line.
    pub start: usize,
}

/// ATX headings of a Markdown text (setext headings are not recognised yet).
pub fn markdown_headings(text: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    let mut fence: Option<char> = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let line_start = start;
        start += line.len();
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            continue;
        }
        let t = line.trim_start_matches(' ').trim_end();
        for f in ['`', '~'] {
            if t.starts_with(&format!("{f}{f}{f}")) {
                match fence {
                    None => fence = Some(f),
                    Some(open) if open == f => fence = None,
                    _ => {}
                }
            }
        }
        if fence.is_some() || t.starts_with("```") || t.starts_with("~~~") {
            continue;
        }
        let level = t.len() - t.trim_start_matches('#').len();
        if !(1..=6).contains(&level) {
            continue;
        }
        let rest = &t[level..];
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            continue;
        }
        let title = rest.trim().trim_end_matches('#').trim_end();
        out.push(Heading {
            level,
            text: title.to_string(),
            start: line_start,
        });
    }
    out
}

const DROPPED: &[&str] = &["script", "style", "noscript", "template", "head"];
const BLOCK: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Visible text of an HTML document and its `<title>`, if any.
pub fn html_text(html: &str) -> (String, Option<String>) {
    let doc = scraper::Html::parse_document(html);
    let title = scraper::Selector::parse("title").ok().and_then(|sel| {
        doc.select(&sel)
            .next()
            .map(|t| collapse(&t.text().collect::<String>()).trim().to_string())
            .filter(|t| !t.is_empty())
    });
    let mut raw = String::new();
    walk(doc.tree.root(), false, &mut raw);
    // Tidy: trim every line, at most one blank line in a row.
    let mut out = String::new();
    let mut blank = 0;
    for line in raw.lines() {
        let line = line.trim();
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    (out, title)
}

fn walk(node: ego_tree::NodeRef<'_, scraper::Node>, pre: bool, out: &mut String) {
    match node.value() {
        scraper::Node::Text(t) => {
            if pre {
                out.push_str(t);
            } else {
                out.push_str(&collapse(t));
            }
        }
        scraper::Node::Element(e) => {
            let name = e.name();
            if DROPPED.contains(&name) {
                return;
            }
            let block = BLOCK.contains(&name);
            let para = matches!(
                name,
                "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "pre" | "blockquote" | "table"
            );
            if block {
                line_break(out, para);
            }
            for child in node.children() {
                walk(child, pre || name == "pre", out);
            }
            if block {
                line_break(out, para);
            }
        }
        scraper::Node::Document | scraper::Node::Fragment => {
            for child in node.children() {
                walk(child, pre, out);
            }
        }
        _ => {}
    }
}

/// Ends the current line (`para`: and leaves a blank line), without
/// stacking breaks of nested blocks (blank runs are tidied afterwards).
fn line_break(out: &mut String, para: bool) {
    let trimmed = out.trim_end_matches([' ', '\t']);
    out.truncate(trimmed.len());
    if para {
        out.push_str("\n\n");
    } else if !out.ends_with('\n') {
        out.push('\n');
    }
}

fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    if space {
        out.push(' ');
    }
    out
}
