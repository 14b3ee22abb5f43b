//! The data-driven suite: every `tests/ui/**/*.mlp` file is checked and its diagnostics are
//! compared with the expectations written inline.
//!
//! - `//~ E0203` on a line: a diagnostic with that code whose primary label starts on this
//!   line. `//~ E0203: did you mean` also requires the message (or help) to contain the text.
//!   `//~^ E0203` points at the line above (for lines that cannot hold a comment).
//! - `//@ set: name=value` passes a parameter override; `//@ plan` also lowers to a plan
//!   (for plan-time diagnostics).
//! - A file without any `//~` must check clean (warnings included).
//!
//! Every diagnostic code with a page in spec/diagnostics/ must be exercised by at least one
//! ui file or be listed in `CODES_TESTED_ELSEWHERE` with the test that covers it.

use mlp_db::{Database, PlanRequest, SourceFile};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Codes whose input cannot be a UTF-8 text file, tested in tests/cli.rs.
const CODES_TESTED_ELSEWHERE: &[(&str, &str)] = &[
    (
        "E0004",
        "compiler/driver/tests/cli.rs: binary_and_invalid_utf8",
    ),
    (
        "E0005",
        "compiler/driver/tests/cli.rs: huge_file_is_refused",
    ),
];

fn ui_files() -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out)
            } else if p.extension().is_some_and(|x| x == "mlp") {
                out.push(p)
            }
        }
    }
    let mut v = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("ui"), &mut v);
    v.sort();
    v
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expect {
    line: usize,
    code: String,
    text: Option<String>,
}

fn expectations(src: &str) -> (Vec<Expect>, Vec<(String, String)>, bool) {
    let mut exp = Vec::new();
    let mut sets = Vec::new();
    let mut plan = false;
    for (i, line) in src.lines().enumerate() {
        if let Some(rest) = line.trim_start().strip_prefix("//@") {
            let rest = rest.trim();
            if rest == "plan" {
                plan = true;
            } else if let Some(kv) = rest.strip_prefix("set:") {
                let (k, v) = kv.trim().split_once('=').expect("//@ set: name=value");
                sets.push((k.to_string(), v.to_string()));
            }
        }
        let mut rest = line;
        while let Some(pos) = rest.find("//~") {
            let after = &rest[pos + 3..];
            let (target, after) = match after.strip_prefix('^') {
                Some(a) => (i, a),
                None => (i + 1, after),
            };
            let spec = after.split("//~").next().unwrap().trim();
            let (code, text) = match spec.split_once(':') {
                Some((c, t)) => (c.trim().to_string(), Some(t.trim().to_string())),
                None => (spec.to_string(), None),
            };
            exp.push(Expect {
                line: target,
                code,
                text,
            });
            rest = after;
        }
    }
    (exp, sets, plan)
}

#[test]
fn ui() {
    let files = ui_files();
    assert!(
        files.len() >= 20,
        "expected the ui suite in tests/ui, found {} files",
        files.len()
    );
    let mut failures = Vec::new();
    let mut seen_codes = BTreeSet::new();
    for path in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let (exp, sets, plan) = expectations(&src);
        let db = Database::new();
        let name = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .display()
            .to_string();
        let file = SourceFile::new(&db, name.clone(), src.clone().into_bytes());
        let mut diags = mlp_db::diagnostics(&db, file).clone();
        if plan || !sets.is_empty() {
            let req = PlanRequest::new(&db, file, sets.clone());
            if let Err(ds) = mlp_db::plan(&db, req) {
                for d in ds {
                    if !diags.contains(d) {
                        diags.push(d.clone());
                    }
                }
            }
        }
        let got: Vec<(usize, &mlp_diagnostics::Diagnostic)> = diags
            .iter()
            .map(|d| {
                (
                    d.primary_span()
                        .map(|s| mlp_diagnostics::line_col(&src, s.start as usize).0)
                        .unwrap_or(0),
                    d,
                )
            })
            .collect();
        let mut matched = vec![false; got.len()];
        for e in &exp {
            seen_codes.insert(e.code.clone());
            let hit = got.iter().enumerate().position(|(k, (line, d))| {
                !matched[k]
                    && d.code == e.code
                    && (*line == e.line || *line == 0)
                    && e.text.as_ref().is_none_or(|t| {
                        d.message.contains(t.as_str())
                            || d.help.as_deref().is_some_and(|h| h.contains(t.as_str()))
                    })
            });
            match hit {
                Some(k) => matched[k] = true,
                None => failures.push(format!(
                    "{name}:{}: expected {}{} but got: {}",
                    e.line,
                    e.code,
                    e.text
                        .as_ref()
                        .map(|t| format!(" containing {t:?}"))
                        .unwrap_or_default(),
                    describe(&got)
                )),
            }
        }
        for (k, (line, d)) in got.iter().enumerate() {
            if !matched[k] {
                failures.push(format!(
                    "{name}:{line}: unexpected {} {}: {}",
                    d.code,
                    d.message,
                    d.help.clone().unwrap_or_default()
                ));
            }
        }
    }
    for code in mlp_diagnostics::codes() {
        if !seen_codes.contains(code) && !CODES_TESTED_ELSEWHERE.iter().any(|(c, _)| *c == code) {
            failures.push(format!("diagnostic code {code} has a page but no ui test"));
        }
    }
    for code in &seen_codes {
        if mlp_diagnostics::page(code).is_none() {
            failures.push(format!(
                "diagnostic code {code} is tested but has no page in spec/diagnostics/"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} ui failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn describe(got: &[(usize, &mlp_diagnostics::Diagnostic)]) -> String {
    if got.is_empty() {
        return "no diagnostics".into();
    }
    got.iter()
        .map(|(l, d)| format!("[{l}: {} {}]", d.code, d.message))
        .collect::<Vec<_>>()
        .join(" ")
}
