//! The canonical formatter for .mlp files: idempotent, keeps every comment.
//!
//! [`format_source`] parses the file, prints the tree in canonical form (placing every
//! comment as it goes, see `comments.rs`), lays the result out within [`WIDTH`] columns
//! (`doc.rs`) and then checks its own work: the output must parse, hold the same comments in
//! the same order, and have the same tree modulo spans. When any check fails the file is
//! refused rather than changed.

mod comments;
mod doc;
mod printer;
mod seq;
mod verify;

use comments::Taken;
use doc::{text, Doc};
use mlp_syntax::ast::{File, Item, ItemKind};
use printer::Printer;
use std::fmt;

/// The line width the formatter aims for.
pub const WIDTH: usize = 100;

/// Why a file was not formatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub message: String,
}

impl FormatError {
    fn new(message: impl Into<String>) -> Self {
        FormatError {
            message: message.into(),
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormatError {}

/// Formats a file in canonical form.
///
/// Refuses (returns `Err`) when the file has syntax errors, and when the formatted text
/// would not parse back to the same tree with the same comments in the same order.
pub fn format_source(text: &str) -> Result<String, FormatError> {
    let parsed = mlp_syntax::parse(text);
    if let Some(d) = parsed.diagnostics.iter().find(|d| d.is_error()) {
        let at = d
            .primary_span()
            .map(|s| {
                let (line, col) = mlp_diagnostics::line_col(text, s.start as usize);
                format!(" at {line}:{col}")
            })
            .unwrap_or_default();
        let more = parsed.diagnostics.iter().filter(|d| d.is_error()).count() - 1;
        let more = match more {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        };
        return Err(FormatError::new(format!(
            "cannot format a file with syntax errors: error[{}]{at}: {}{more}",
            d.code, d.message
        )));
    }
    let out = print_file(text, &parsed.file);
    verify::check(&parsed.file, &out)?;
    Ok(out)
}

/// Prints a whole file: items one per block, a blank line between them, consecutive imports
/// together, comments between items kept on their own lines.
fn print_file(src: &str, file: &File) -> String {
    let mut p = Printer::new(src, &file.comments);
    let mut lines = Lines::default();
    // A doc comment trailing the previous item documents the next one: it moves above it.
    let mut carried: Option<Taken<'_>> = None;
    let mut prev_trailing_doc = false;
    for (i, item) in file.items.iter().enumerate() {
        let mut lead: Vec<Taken<'_>> = carried.take().into_iter().collect();
        lead.extend(p.c.before(item.span.start));
        let prev = i.checked_sub(1).map(|k| &file.items[k]);
        let imports = prev.is_some_and(is_import) && is_import(item);
        // The gap between the previous item and this one's first line.
        let gap = |src_blank: bool, is_comment: bool| match prev {
            None => false,
            Some(_) if imports => src_blank && (is_comment || prev_trailing_doc),
            Some(_) => true,
        };
        for (k, t) in lead.iter().enumerate() {
            let blank = if k == 0 {
                gap(t.blank_before, true)
            } else {
                t.blank_before
            };
            lines.push(text(t.text()), blank);
        }
        let src_blank = p.c.blank_before(item.span.start as usize);
        let blank = if lead.is_empty() {
            gap(src_blank, false)
        } else {
            src_blank
        };
        let doc = p.item(item);
        lines.push(doc, blank);
        let next = file.items.get(i + 1);
        let limit = next.map_or(src.len() as u32, |n| n.span.start);
        prev_trailing_doc = false;
        let end = p.c.code_end(item.span.end);
        if let Some(t) = p.c.trailing(end, limit) {
            let after = &src[t.comment.span.end as usize..];
            let gap = &after[..after.len() - after.trim_start().len()];
            if t.comment.doc && next.is_some() && gap.matches('\n').count() == 1 {
                carried = Some(t);
            } else {
                prev_trailing_doc = t.comment.doc;
                lines.parts.push(Doc::Suffix(t.text()));
            }
        }
    }
    for t in p.c.before(u32::MAX) {
        lines.push(text(t.text()), t.blank_before);
    }
    debug_assert!(p.c.done());
    doc::render(&doc::concat(lines.parts), WIDTH)
}

fn is_import(item: &Item) -> bool {
    matches!(item.kind, ItemKind::Import(_))
}

/// Top-level lines, each after a newline (and a blank line when asked).
#[derive(Default)]
struct Lines {
    parts: Vec<Doc>,
}

impl Lines {
    fn push(&mut self, doc: Doc, blank: bool) {
        if !self.parts.is_empty() {
            if blank {
                self.parts.push(Doc::Blank);
            }
            self.parts.push(Doc::Hard);
        }
        self.parts.push(doc);
    }
}
