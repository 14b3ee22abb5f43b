//! Every .mlp file in the repository's examples/ and stdlib/ formats to a fixed point and
//! keeps its comments.

use std::path::{Path, PathBuf};

fn mlp_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            mlp_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "mlp") {
            out.push(path);
        }
    }
}

fn comment_texts(src: &str) -> Vec<String> {
    mlp_syntax::parse(src)
        .file
        .comments
        .iter()
        .map(|c| c.text.trim_end().to_string())
        .collect()
}

#[test]
fn examples_and_stdlib_format_idempotently() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["examples", "stdlib"] {
        mlp_files(&root.join(dir), &mut files);
    }
    let mut failures = Vec::new();
    for path in &files {
        let Ok(src) = std::fs::read_to_string(path) else {
            continue; // not UTF-8: not an mlp file anyone can format
        };
        let shown = path.strip_prefix(&root).unwrap_or(path).display();
        let parsed = mlp_syntax::parse(&src);
        if parsed.diagnostics.iter().any(|d| d.is_error()) {
            // A deliberately broken file: the formatter must refuse it, not mangle it.
            if mlp_fmt::format_source(&src).is_ok() {
                failures.push(format!("{shown}: has syntax errors but was formatted"));
            }
            continue;
        }
        let once = match mlp_fmt::format_source(&src) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{shown}: refused: {e}"));
                continue;
            }
        };
        if comment_texts(&src) != comment_texts(&once) {
            failures.push(format!("{shown}: comments changed"));
        }
        match mlp_fmt::format_source(&once) {
            Ok(twice) if twice == once => {}
            Ok(_) => failures.push(format!("{shown}: not idempotent")),
            Err(e) => failures.push(format!("{shown}: formatted output refused: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
