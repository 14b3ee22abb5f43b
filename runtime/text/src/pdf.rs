//! PDF text extraction through `pdf-extract` (which parses with `lopdf`).
//!
//! `pdf-extract` can panic on malformed or unusual PDFs (it has `unwrap`s
//! and `unimplemented!`s on paths that real-world files reach), so every
//! call into it runs inside [`std::panic::catch_unwind`] and a panic becomes
//! a [`TextError::Pdf`]. The default panic hook still prints the panic
//! message to stderr.
//!
//! A stack overflow is not a panic: it aborts the process, and
//! `catch_unwind` cannot stop it. `lopdf` bounds the nesting depth of the
//! objects it parses, but `pdf-extract` follows page `Parent` links and form
//! XObjects (`Do`) by unbounded recursion, so a PDF whose form invokes
//! itself would crash the process. [`check_recursion`] walks the same links
//! first, with a depth limit, and refuses such files.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use pdf_extract::content::Content;
use pdf_extract::{Dictionary, Document, Object, ObjectId, PlainTextOutput, Stream};

use crate::error::{Result, TextError};

/// Text and metadata of the PDF `bytes` read from `path` (see
/// [`crate::load::load_pdf`] for the layout of the text and the metadata).
pub(crate) fn extract(path: &Path, bytes: &[u8]) -> Result<(String, BTreeMap<String, String>)> {
    let err = |message: String| TextError::Pdf {
        path: path.to_path_buf(),
        message,
    };
    let (pages, title) = match catch_unwind(AssertUnwindSafe(|| pages_text(bytes))) {
        Ok(r) => r.map_err(err)?,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            return Err(err(format!(
                "corrupt or unsupported PDF (text extraction failed: {what})"
            )));
        }
    };
    if pages.is_empty() {
        return Err(err("the PDF has no pages".into()));
    }
    // Pages joined by a blank line; a page without text starts where the
    // next page with text does (or at the end), so that "the last start <=
    // offset" always names a page that has text there.
    let mut text = String::new();
    let mut starts: Vec<Option<usize>> = Vec::with_capacity(pages.len());
    for page in &pages {
        let page = page.trim();
        if page.is_empty() {
            starts.push(None);
            continue;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        starts.push(Some(text.len()));
        text.push_str(page);
    }
    let mut next = text.len();
    let mut starts: Vec<String> = starts
        .iter()
        .rev()
        .map(|s| {
            next = s.unwrap_or(next);
            next.to_string()
        })
        .collect();
    starts.reverse();
    if text.trim().is_empty() {
        return Err(err(format!(
            "no extractable text in {} page(s) (an image-only or scanned PDF? \
             OCR is not supported)",
            pages.len()
        )));
    }
    let mut meta = BTreeMap::new();
    meta.insert("pages".into(), pages.len().to_string());
    meta.insert("page_starts".into(), starts.join(","));
    if let Some(t) = title {
        meta.insert("title".into(), t);
    }
    Ok((text, meta))
}

type Pages = (Vec<String>, Option<String>);

/// The raw text of each page, and the document title. May panic (inside
/// `pdf-extract`); [`extract`] catches that.
fn pages_text(bytes: &[u8]) -> std::result::Result<Pages, String> {
    // The header may follow up to 1 KiB of junk (PDF 1.7, annex H).
    if !bytes[..bytes.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        return Err("not a PDF (no %PDF- header)".into());
    }
    // `lopdf` decrypts on load when the user password is empty; otherwise the
    // document stays encrypted.
    let doc = Document::load_mem(bytes).map_err(|e| format!("corrupt or unsupported PDF: {e}"))?;
    if doc.is_encrypted() {
        return Err("encrypted PDF: a password is required to read it (not supported)".into());
    }
    let title = doc
        .trailer
        .get(b"Info")
        .ok()
        .and_then(|info| match info {
            Object::Reference(id) => doc.get_dictionary(*id).ok(),
            Object::Dictionary(d) => Some(d),
            _ => None,
        })
        .and_then(|info| info.get(b"Title").ok())
        .and_then(|t| match t {
            Object::Reference(id) => doc.get_object(*id).ok(),
            t => Some(t),
        })
        .and_then(|t| pdf_extract::decode_text_string(t).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    check_recursion(&doc)?;
    let count = doc.get_pages().len();
    let mut pages = Vec::with_capacity(count);
    for n in 1..=count as u32 {
        let mut s = String::new();
        let mut out = PlainTextOutput::new(&mut s);
        pdf_extract::output_doc_page(&doc, &mut out, n)
            .map_err(|e| format!("page {n}: cannot extract text: {e}"))?;
        pages.push(s);
    }
    Ok((pages, title))
}

/// Deepest nesting of form XObjects accepted (real PDFs use a few levels).
const MAX_FORM_DEPTH: usize = 32;
/// Most form XObject invocations accepted in a document (a small PDF whose
/// forms each invoke the next one twice would otherwise take exponential
/// time).
const MAX_FORM_CALLS: usize = 100_000;

/// Refuses the structures `pdf-extract` would recurse into forever (or
/// nearly): a cycle of page `Parent` links, and form XObjects that invoke
/// themselves, nest too deep or are invoked too often. Mirrors how
/// `pdf-extract` resolves them: a page's resources are the first found up
/// its `Parent` chain; a form uses its own resources, else its caller's.
fn check_recursion(doc: &Document) -> std::result::Result<(), String> {
    let mut calls = 0;
    for (n, page_id) in doc.get_pages() {
        let mut seen: HashSet<ObjectId> = HashSet::new();
        let mut id = page_id;
        let mut resources = None;
        while let Ok(dict) = doc.get_dictionary(id) {
            if !seen.insert(id) {
                return Err(format!("corrupt PDF: page {n}: its page tree has a cycle"));
            }
            if resources.is_none() {
                resources = dict.get(b"Resources").ok().and_then(|r| as_dict(doc, r));
            }
            match dict.get(b"Parent") {
                Ok(Object::Reference(parent)) => id = *parent,
                _ => break,
            }
        }
        let Ok(content) = doc.get_page_content(page_id) else {
            continue;
        };
        let mut stack = Vec::new();
        visit_forms(doc, &content, resources, &mut stack, &mut calls)
            .map_err(|e| format!("unsupported PDF: page {n}: {e}"))?;
    }
    Ok(())
}

fn as_dict<'a>(doc: &'a Document, obj: &'a Object) -> Option<&'a Dictionary> {
    match obj {
        Object::Reference(id) => doc.get_dictionary(*id).ok(),
        Object::Dictionary(d) => Some(d),
        _ => None,
    }
}

/// The `Do` operations of `content`, followed into form XObjects.
/// `stack` holds the forms being visited (by address: a form may be a direct
/// object without an id).
fn visit_forms(
    doc: &Document,
    content: &[u8],
    resources: Option<&Dictionary>,
    stack: &mut Vec<*const Stream>,
    calls: &mut usize,
) -> std::result::Result<(), String> {
    let Some(resources) = resources else {
        return Ok(());
    };
    // Content that does not decode is left to `pdf-extract` to report.
    let Ok(content) = Content::decode(content) else {
        return Ok(());
    };
    for op in content.operations.iter().filter(|op| op.operator == "Do") {
        let Some(name) = op.operands.first().and_then(|o| o.as_name().ok()) else {
            continue;
        };
        let Some(xobjects) = resources.get(b"XObject").ok().and_then(|x| as_dict(doc, x)) else {
            continue;
        };
        let form = match xobjects.get(name) {
            Ok(Object::Reference(id)) => doc.get_object(*id).ok(),
            Ok(other) => Some(other),
            Err(_) => None,
        };
        let Some(Object::Stream(form)) = form else {
            continue;
        };
        *calls += 1;
        if *calls > MAX_FORM_CALLS {
            return Err(format!(
                "more than {MAX_FORM_CALLS} form XObject invocations"
            ));
        }
        let key: *const Stream = form;
        if stack.contains(&key) {
            return Err("a form XObject invokes itself (a cycle)".into());
        }
        if stack.len() >= MAX_FORM_DEPTH {
            return Err(format!(
                "form XObjects nested more than {MAX_FORM_DEPTH} deep"
            ));
        }
        let inner = form
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|r| as_dict(doc, r))
            .or(Some(resources));
        let bytes = if form.filters().is_ok() {
            form.decompressed_content()
                .unwrap_or_else(|_| form.content.clone())
        } else {
            form.content.clone()
        };
        stack.push(key);
        visit_forms(doc, &bytes, inner, stack, calls)?;
        stack.pop();
    }
    Ok(())
}
