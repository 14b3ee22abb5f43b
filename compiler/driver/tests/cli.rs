//! The `mlp` binary as a user runs it: exit codes, output formats, files written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlp"))
        .args(args)
        .output()
        .expect("run mlp")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mlp-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const BAD: &str = r#"import table.{csv, series}

pipeline costs() {
  let prices: Table{month: Date, steel: Float} = csv("prices.csv")
  let feats = prices.derive { r = steel / lag(stel, 12) }
  let s = series(feats, time: "month", value: "r")
}
"#;

#[test]
fn check_examples_is_clean() {
    let ex = root().join("examples");
    let out = mlp(&["check", ex.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("0 error(s)"));
}

#[test]
fn check_reports_errors_with_exit_1_and_json() {
    let d = tmp("check");
    let f = d.join("bad.mlp");
    std::fs::write(&f, BAD).unwrap();
    let out = mlp(&["check", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("E0203") && err.contains("did you mean `steel`?"),
        "{err}"
    );

    let out = mlp(&["check", "--format", "json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"], 1);
    let d0 = &v["files"][0]["diagnostics"][0];
    assert_eq!(d0["code"], "E0203");
    assert_eq!(d0["labels"][0]["line"], 5);
    assert_eq!(d0["help"], "did you mean `steel`?");
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = mlp(&["check", "/nonexistent/x.mlp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no such file"),
        "{}",
        text(&out.stderr)
    );
    let out = mlp(&["plan", "/nonexistent/x.mlp"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn binary_and_invalid_utf8() {
    let d = tmp("bin");
    let f = d.join("bin.mlp");
    std::fs::write(&f, [0x7f, b'E', b'L', b'F', 0, 1, 2, 0xff, 0xfe]).unwrap();
    let out = mlp(&["check", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("E0004"), "{}", text(&out.stderr));
    std::fs::write(&f, b"pipeline a() { let x = \"\xff\xfe\" }").unwrap();
    let out = mlp(&["check", "--format", "json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][0]["diagnostics"][0]["code"], "E0004");
}

#[test]
fn huge_file_is_refused() {
    let d = tmp("huge");
    let f = d.join("huge.mlp");
    let mut s = String::with_capacity(33 << 20);
    while s.len() <= 32 << 20 {
        s.push_str("// padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&f, s).unwrap();
    let out = mlp(&["check", "--format", "json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][0]["diagnostics"][0]["code"], "E0005");
}

#[test]
fn empty_file_is_a_warning_only() {
    let d = tmp("empty");
    let f = d.join("empty.mlp");
    std::fs::write(&f, "").unwrap();
    let out = mlp(&["check", f.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("W0001"));
}

#[test]
fn plan_is_deterministic_and_writes_atomically() {
    let ex = root().join("examples/seismic_embeddings/pipeline.mlp");
    let a = mlp(&["plan", ex.to_str().unwrap()]);
    let b = mlp(&["plan", ex.to_str().unwrap()]);
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let d = tmp("plan");
    let o = d.join("plan.json");
    let c = mlp(&["plan", ex.to_str().unwrap(), "-o", o.to_str().unwrap()]);
    assert!(c.status.success());
    assert_eq!(std::fs::read(&o).unwrap(), a.stdout);
}

#[test]
fn plan_diff_explains_changes() {
    let ex = root().join("examples/seismic_embeddings/pipeline.mlp");
    let d = tmp("diff");
    let old = d.join("old.json");
    let out = mlp(&["plan", ex.to_str().unwrap(), "-o", old.to_str().unwrap()]);
    assert!(out.status.success());
    let same = mlp(&[
        "plan",
        ex.to_str().unwrap(),
        "--diff",
        old.to_str().unwrap(),
    ]);
    assert!(same.status.success());
    assert!(
        text(&same.stdout).contains("0 to add, 0 to change, 0 to remove"),
        "{}",
        text(&same.stdout)
    );
    let changed = mlp(&[
        "plan",
        ex.to_str().unwrap(),
        "--set",
        "dim=16",
        "--diff",
        old.to_str().unwrap(),
    ]);
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    let t = text(&changed.stdout);
    assert!(t.contains("~ trace_embeddings.fit"), "{t}");
    assert!(t.contains("units"), "{t}");
    let j = mlp(&[
        "plan",
        ex.to_str().unwrap(),
        "--set",
        "dim=16",
        "--diff",
        old.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let _: serde_json::Value =
        serde_json::from_slice(&j.stdout).expect("diff --format json is JSON");
}

#[test]
fn set_rejects_unknown_and_mistyped_parameters() {
    let ex = root().join("examples/seismic_embeddings/pipeline.mlp");
    let out = mlp(&["plan", ex.to_str().unwrap(), "--set", "dimm=16"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("E0211"), "{}", text(&out.stderr));
    let out = mlp(&["plan", ex.to_str().unwrap(), "--set", "dim=abc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("E0211"));
    let out = mlp(&["plan", ex.to_str().unwrap(), "--set", "novalue"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn graph_formats() {
    let ex = root().join("examples/rag/pipeline.mlp");
    let dot = mlp(&["graph", ex.to_str().unwrap()]);
    assert!(dot.status.success(), "{}", text(&dot.stderr));
    assert!(text(&dot.stdout).starts_with("digraph"));
    let mm = mlp(&["graph", ex.to_str().unwrap(), "--format", "mermaid"]);
    assert!(mm.status.success());
    assert!(text(&mm.stdout).contains("flowchart"));
}

#[test]
fn explain_pages() {
    let out = mlp(&["explain", "E0203"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("# E0203"));
    let out = mlp(&["explain", "e0203"]);
    assert!(out.status.success());
    let out = mlp(&["explain", "E9999"]);
    assert_eq!(out.status.code(), Some(1));
    let out = mlp(&["explain"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).lines().count() >= 30);
}

#[test]
fn fmt_rewrites_and_check_reports() {
    let d = tmp("fmt");
    let f = d.join("a.mlp");
    std::fs::write(
        &f,
        "import nn.{dense}\npipeline   p( x:Int=1 ){\n  let a=x+1   // keep me\n}\n",
    )
    .unwrap();
    let out = mlp(&["fmt", "--check", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let out = mlp(&["fmt", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let formatted = std::fs::read_to_string(&f).unwrap();
    assert!(formatted.contains("// keep me"));
    assert!(
        formatted.contains("pipeline p(x: Int = 1) {"),
        "{formatted}"
    );
    let out = mlp(&["fmt", "--check", f.to_str().unwrap()]);
    assert!(out.status.success());
    // A file with a syntax error is left alone.
    let g = d.join("b.mlp");
    std::fs::write(&g, "pipeline p( {").unwrap();
    let out = mlp(&["fmt", g.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&g).unwrap(), "pipeline p( {");
}
