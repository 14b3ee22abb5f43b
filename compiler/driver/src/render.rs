//! Rendering diagnostics at the edge: miette for people, JSON for CI and editors.

use mlp_diagnostics::{line_col, Diagnostic, Severity};
use serde_json::{json, Value};

/// Renders one diagnostic with miette, source snippet and labels included.
pub fn human(path: &str, text: &str, d: &Diagnostic) -> String {
    use miette::{LabeledSpan, MietteDiagnostic, NamedSource, Report};
    let mut md = MietteDiagnostic::new(d.message.clone())
        .with_code(d.code.clone())
        .with_severity(match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        });
    let mut notes = Vec::new();
    let len = text.len();
    for l in &d.labels {
        match &l.file {
            None => {
                let start = (l.span.start as usize).min(len);
                let end = (l.span.end as usize).clamp(start, len);
                let ls = LabeledSpan::new_with_span(Some(l.message.clone()), start..end);
                md = md.and_label(if l.primary {
                    LabeledSpan::new_primary_with_span(Some(l.message.clone()), start..end)
                } else {
                    ls
                });
            }
            Some(f) => {
                let loc = mlp_sema::prelude::prelude()
                    .source_of(f)
                    .map(|src| {
                        let (a, b) = line_col(src, l.span.start as usize);
                        format!("{f}:{a}:{b}")
                    })
                    .unwrap_or_else(|| f.clone());
                notes.push(format!("{loc}: {}", l.message));
            }
        }
    }
    let mut help = d.help.clone().unwrap_or_default();
    for n in d.notes.iter().chain(notes.iter()) {
        if !help.is_empty() {
            help.push('\n');
        }
        help.push_str("note: ");
        help.push_str(n);
    }
    if !help.is_empty() {
        md = md.with_help(help);
    }
    let report = Report::new(md).with_source_code(NamedSource::new(path, text.to_string()));
    format!("{report:?}")
}

/// The JSON form of a diagnostic: positions as byte offsets and 1-based line/column.
pub fn json(path: &str, text: &str, d: &Diagnostic) -> Value {
    let labels: Vec<Value> = d
        .labels
        .iter()
        .map(|l| {
            let src = match &l.file {
                None => text,
                Some(f) => mlp_sema::prelude::prelude().source_of(f).unwrap_or(""),
            };
            let (line, column) = line_col(src, l.span.start as usize);
            let (end_line, end_column) = line_col(src, l.span.end as usize);
            json!({
                "file": l.file.clone().unwrap_or_else(|| path.to_string()),
                "start": l.span.start, "end": l.span.end,
                "line": line, "column": column, "end_line": end_line, "end_column": end_column,
                "message": l.message, "primary": l.primary,
            })
        })
        .collect();
    json!({
        "code": d.code,
        "severity": d.severity,
        "message": d.message,
        "labels": labels,
        "help": d.help,
        "notes": d.notes,
    })
}
