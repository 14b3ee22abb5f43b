//! The safety net: the formatted text must parse without errors, keep every comment in
//! order, and describe the same program (the same tree, spans aside).

use crate::FormatError;
use mlp_syntax::ast::{File, Item, ItemKind, Param, Stmt};

pub fn check(before: &File, out: &str) -> Result<(), FormatError> {
    let after = mlp_syntax::parse(out);
    if let Some(d) = after.diagnostics.iter().find(|d| d.is_error()) {
        return Err(FormatError::new(format!(
            "internal formatter error: the formatted text does not parse (error[{}]: {}); \
             the file was left unchanged",
            d.code, d.message
        )));
    }
    let texts = |f: &File| -> Vec<String> {
        f.comments
            .iter()
            .map(|c| c.text.trim_end().to_string())
            .collect()
    };
    if texts(before) != texts(&after.file) {
        return Err(FormatError::new(
            "formatting would lose or reorder a comment; the file was left unchanged",
        ));
    }
    if shape(&before.items) != shape(&after.file.items) {
        return Err(FormatError::new(
            "internal formatter error: formatting would change the program; \
             the file was left unchanged",
        ));
    }
    Ok(())
}

/// A rendering of the items that ignores spans and trailing whitespace in doc comments.
pub fn shape(items: &[Item]) -> String {
    let mut items = items.to_vec();
    for item in &mut items {
        normalize_doc(&mut item.doc);
        let params: &mut [Param] = match &mut item.kind {
            ItemKind::Import(_) => &mut [],
            ItemKind::Pipeline(p) => {
                for s in &mut p.stmts {
                    if let Stmt::Let(l) = s {
                        normalize_doc(&mut l.doc);
                    }
                }
                &mut p.params
            }
            ItemKind::Fn(f) => {
                if let Some(b) = &mut f.body {
                    for l in &mut b.lets {
                        normalize_doc(&mut l.doc);
                    }
                }
                &mut f.params
            }
            ItemKind::Op(o) => &mut o.params,
        };
        for p in params {
            normalize_doc(&mut p.doc);
        }
    }
    strip_spans(&format!("{items:?}"))
}

fn normalize_doc(doc: &mut Option<String>) {
    if let Some(d) = doc {
        *d = d.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    }
}

/// Removes every `Span { start: N, end: N }` from a debug rendering.
fn strip_spans(s: &str) -> String {
    const OPEN: &str = "Span { start: ";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        match after.find(" }") {
            Some(j) if is_span_body(&after[OPEN.len()..j]) => {
                out.push('_');
                rest = &after[j + 2..];
            }
            _ => {
                out.push_str(OPEN);
                rest = &after[OPEN.len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `12, end: 15`
fn is_span_body(s: &str) -> bool {
    match s.split_once(", end: ") {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_spans_only() {
        assert_eq!(
            strip_spans("Ident { name: \"a\", span: Span { start: 1, end: 22 } }"),
            "Ident { name: \"a\", span: _ }"
        );
        assert_eq!(strip_spans("Span { start: x }"), "Span { start: x }");
    }

    fn file(src: &str) -> File {
        mlp_syntax::parse(src).file
    }

    #[test]
    fn refuses_output_that_drops_or_reorders_a_comment() {
        let before = file("// a\n// b\nfn f() -> Int { 1 }\n");
        assert!(check(&before, "// a\n// b\nfn f() -> Int {\n  1\n}\n").is_ok());
        let e = check(&before, "// a\nfn f() -> Int {\n  1\n}\n").unwrap_err();
        assert!(e.message.contains("comment"), "{e}");
        let e = check(&before, "// b\n// a\nfn f() -> Int {\n  1\n}\n").unwrap_err();
        assert!(e.message.contains("comment"), "{e}");
    }

    #[test]
    fn refuses_output_that_changes_the_program_or_does_not_parse() {
        let before = file("/// doc\nfn f() -> Int { 1 }\n");
        let e = check(&before, "/// doc\nfn f() -> Int {\n  2\n}\n").unwrap_err();
        assert!(e.message.contains("change the program"), "{e}");
        // The same comment, but no longer the function's doc.
        let e = check(&before, "/// doc\n\nfn f() -> Int {\n  1\n}\n").unwrap_err();
        assert!(e.message.contains("change the program"), "{e}");
        let e = check(&before, "/// doc\nfn f() -> Int {\n").unwrap_err();
        assert!(e.message.contains("does not parse"), "{e}");
    }

    #[test]
    fn same_program_different_layout() {
        let a = mlp_syntax::parse("fn f(x: Int) -> Int { x + 1 }").file;
        let b = mlp_syntax::parse("fn f(\n  x: Int,\n) -> Int {\n  x + 1\n}\n").file;
        let c = mlp_syntax::parse("fn f(x: Int) -> Int { x + 2 }").file;
        assert_eq!(shape(&a.items), shape(&b.items));
        assert_ne!(shape(&a.items), shape(&c.items));
    }
}
