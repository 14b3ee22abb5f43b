//! A lexical pre-pass over the whole file, before pest sees it. It
//! - records every comment (the formatter keeps them; doc comments become hover docs),
//! - finds unterminated strings and unbalanced or too deeply nested brackets, so pest's
//!   recursive descent never runs on input that could exhaust the stack,
//! - splits the file into top-level item chunks, so one broken item does not hide the
//!   errors in the others.

use crate::ast::{Comment, Span};
use mlp_diagnostics::Diagnostic;

/// The deepest bracket nesting accepted. Real pipelines nest a handful of levels; the
/// limit keeps the recursive parser and every recursive pass far from the stack's end.
pub const MAX_NESTING: usize = 64;

/// Item keywords that start a new top-level item when they begin a line at depth 0,
/// or at column 0 whatever the depth (so an unclosed brace does not swallow the file).
const ITEM_KEYWORDS: &[&str] = &["import", "pipeline", "fn", "op", "@"];

pub struct Scan {
    pub comments: Vec<Comment>,
    /// Byte ranges of top-level item candidates, in order.
    pub chunks: Vec<Span>,
    pub diagnostics: Vec<Diagnostic>,
    /// True when the nesting was too deep for the parser to run safely.
    pub too_deep: bool,
}

fn starts_item(rest: &str) -> bool {
    ITEM_KEYWORDS.iter().any(|k| {
        rest.starts_with(k)
            && (*k == "@"
                || rest[k.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_')))
    })
}

pub fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut comments = Vec::new();
    let mut diagnostics = Vec::new();
    let mut chunk_starts: Vec<usize> = Vec::new();
    // Stack of open brackets (byte, offset); its length is the depth.
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut too_deep = false;
    let mut at_line_start = true;
    // True after a line of attributes (`@version(2)`), which belong to the next item.
    let mut pending_attr = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if at_line_start {
            // Skip indentation, then see whether this line starts an item.
            let mut j = i;
            while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t' || bytes[j] == b'\r') {
                j += 1;
            }
            at_line_start = false;
            let rest = &text[j..];
            if starts_item(rest) && (stack.is_empty() || j == i) {
                if !stack.is_empty() {
                    // An item keyword at column 0 inside brackets: the previous item
                    // left something open. Report it and start afresh.
                    let (open, at) = *stack.last().unwrap();
                    diagnostics.push(
                        Diagnostic::error("E0001", format!("unclosed `{}`", open as char))
                            .at(Span::new(at, at + 1), "this bracket is never closed")
                            .also(Span::new(j, j + 1), "the next item starts here")
                            .help("close the bracket before the next item"),
                    );
                    stack.clear();
                }
                if !pending_attr {
                    chunk_starts.push(j);
                }
                pending_attr = rest.starts_with('@');
            } else if stack.is_empty()
                && !rest.starts_with("//")
                && !rest.starts_with('\n')
                && !rest.is_empty()
            {
                pending_attr = false;
            }
            i = j;
            continue;
        }
        match b {
            b'\n' => {
                at_line_start = true;
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map(|n| i + n).unwrap_or(text.len());
                let t = text[i..end].trim_end_matches('\r');
                let doc = t.starts_with("///") && !t.starts_with("////");
                comments.push(Comment {
                    span: Span::new(i, i + t.len()),
                    text: t.to_string(),
                    doc,
                });
                i = end;
            }
            b'"' => {
                let start = i;
                i += 1;
                let mut closed = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => {
                            if let Some(msg) = bad_escape(&text[i..]) {
                                diagnostics.push(
                                    Diagnostic::error("E0006", msg)
                                        .at(Span::new(i, (i + 2).min(bytes.len())), "invalid escape")
                                        .help("the escapes are \\\" \\\\ \\n \\t \\r \\0 and \\u{hex} (1 to 6 hex digits)"),
                                );
                            }
                            i += 2
                        }
                        b'"' => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        b'\n' => break,
                        _ => i += 1,
                    }
                }
                if !closed {
                    let end = i.min(bytes.len());
                    diagnostics.push(
                        Diagnostic::error("E0002", "unterminated string literal")
                            .at(Span::new(start, start + 1), "this string is never closed")
                            .also(Span::new(end, end), "the line ends here")
                            .help("close the string with `\"` on the same line; use `\\n` for a line break inside it"),
                    );
                }
            }
            b'(' | b'[' | b'{' => {
                stack.push((b, i));
                if stack.len() > MAX_NESTING && !too_deep {
                    too_deep = true;
                    diagnostics.push(
                        Diagnostic::error(
                            "E0003",
                            format!("brackets nested more than {MAX_NESTING} levels deep"),
                        )
                        .at(Span::new(i, i + 1), "this bracket is too deep")
                        .help("split the expression into `let` bindings"),
                    );
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                let want = match b {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                match stack.last() {
                    Some(&(open, _)) if open == want => {
                        stack.pop();
                    }
                    Some(_) if stack.iter().any(|&(o, _)| o == want) => {
                        // Close the matching bracket further down; whatever was opened
                        // after it is unclosed.
                        while let Some((open, at)) = stack.pop() {
                            if open == want {
                                break;
                            }
                            diagnostics.push(
                                Diagnostic::error("E0001", format!("unclosed `{}`", open as char))
                                    .at(Span::new(at, at + 1), "this bracket is never closed")
                                    .also(
                                        Span::new(i, i + 1),
                                        format!("`{}` closes an outer bracket here", b as char),
                                    ),
                            );
                        }
                    }
                    Some(&(open, at)) => {
                        // Nothing open matches this bracket: it is stray. Keep the open
                        // ones, so one stray bracket does not unbalance the rest.
                        diagnostics.push(
                            Diagnostic::error("E0001", format!("unmatched `{}`", b as char))
                                .at(Span::new(i, i + 1), format!("nothing to close here (the innermost open bracket is `{}`)", open as char))
                                .also(Span::new(at, at + 1), "innermost open bracket"),
                        );
                    }
                    None => {
                        diagnostics.push(
                            Diagnostic::error("E0001", format!("unmatched `{}`", b as char))
                                .at(Span::new(i, i + 1), "nothing to close here"),
                        );
                    }
                }
                i += 1;
            }
            _ => {
                // Skip the rest of the UTF-8 sequence in one go.
                i += utf8_len(b);
            }
        }
    }
    if let Some(&(open, at)) = stack.first() {
        diagnostics.push(
            Diagnostic::error("E0001", format!("unclosed `{}`", open as char))
                .at(Span::new(at, at + 1), "this bracket is never closed")
                .help("add the closing bracket"),
        );
    }
    // Anything before the first item keyword that is not trivia is a chunk of its own,
    // so the parser reports it.
    let first = chunk_starts.first().copied().unwrap_or(text.len());
    if has_code(text, 0, first, &comments) {
        chunk_starts.insert(0, 0);
    }
    let mut chunks = Vec::with_capacity(chunk_starts.len());
    for (k, &s) in chunk_starts.iter().enumerate() {
        let e = chunk_starts.get(k + 1).copied().unwrap_or(text.len());
        chunks.push(Span::new(s, e));
    }
    Scan {
        comments,
        chunks,
        diagnostics,
        too_deep,
    }
}

fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Whether `text[start..end]` holds anything but whitespace and comments.
fn has_code(text: &str, start: usize, end: usize, comments: &[Comment]) -> bool {
    let mut i = start;
    let bytes = text.as_bytes();
    while i < end {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if let Some(c) = comments.iter().find(|c| c.span.start as usize == i) {
            i = c.span.end as usize;
            continue;
        }
        return true;
    }
    false
}

/// Why a backslash sequence at the start of `s` is not a valid escape, if it is not.
fn bad_escape(s: &str) -> Option<String> {
    let mut chars = s.chars();
    chars.next();
    match chars.next() {
        Some('"' | '\\' | 'n' | 't' | 'r' | '0') => None,
        Some('u') => {
            let rest = &s[2..];
            let Some(body) = rest.strip_prefix('{') else {
                return Some("invalid escape `\\u`: write `\\u{hex}`".into());
            };
            let end = body.find('}')?;
            let hex = &body[..end];
            if hex.is_empty() || hex.len() > 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Some(format!("invalid unicode escape `\\u{{{hex}}}`"));
            }
            match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                Some(_) => None,
                None => Some(format!("`\\u{{{hex}}}` is not a Unicode scalar value")),
            }
        }
        Some(c) => Some(format!("invalid escape `\\{c}`")),
        None => None,
    }
}
