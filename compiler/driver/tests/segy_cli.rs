//! `mlp segy inspect|export|synth` as other tools call it: the JSON contract of `inspect`,
//! the arrays `export` writes, `synth`'s determinism and formats, irregular surveys, and
//! clear errors (exit code 1, never a panic) on bad input.
//!
//! The segyio test files live in `../shared/data/segy` (next to the repository). Without
//! them the tests that need them print why and pass, except under `CI=true`.

use mlp_segy::npy::{read_npy, DType, NpyArray};
use mlp_segy::{OpenOptions, SegyFile};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn mlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlp"))
        .args(args)
        .output()
        .expect("run mlp")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Runs `mlp` and asserts it succeeded.
fn ok(args: &[&str]) -> Output {
    let out = mlp(args);
    assert!(
        out.status.success(),
        "mlp {args:?} failed ({:?}):\n{}",
        out.status.code(),
        text(&out.stderr)
    );
    out
}

/// Runs `mlp`, asserts a clean failure (exit 1, an `error:` line, no panic) and returns
/// stderr.
fn fails(args: &[&str]) -> String {
    let out = mlp(args);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "mlp {args:?}: expected exit code 1\nstdout: {}\nstderr: {err}",
        text(&out.stdout)
    );
    assert_no_panic(&err);
    assert!(err.starts_with("error:"), "mlp {args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "mlp {args:?} printed to stdout on failure"
    );
    err
}

fn assert_no_panic(err: &str) {
    assert!(
        !err.contains("panicked") && !err.contains("internal compiler error"),
        "a panic: {err}"
    );
}

/// A directory under cargo's per-target temporary directory, removed when dropped.
struct TmpDir(PathBuf);

impl TmpDir {
    fn new(name: &str) -> TmpDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "segy-cli-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create a temporary directory");
        TmpDir(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The shared segyio test files, or `None` (with a message) when they are absent outside
/// CI.
fn data() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/segy");
    if d.join("small.sgy").is_file() {
        return Some(d);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing; CI=true needs the shared SEG-Y test files",
            d.display()
        );
    }
    eprintln!(
        "skipping: the shared SEG-Y test files are not in {}",
        d.display()
    );
    None
}

fn inspect_json(file: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["segy", "inspect", s(file), "--json"];
    args.extend_from_slice(extra);
    let out = ok(&args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "inspect --json of {} is not JSON ({e}):\n{}",
            file.display(),
            text(&out.stdout)
        )
    })
}

fn npy(path: &Path) -> NpyArray {
    read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_i64().unwrap_or_else(|| panic!("not an integer: {x}")))
        .collect()
}

/// Synthesises a survey with `mlp segy synth`.
fn synth(out: &Path, size: &str, extra: &[&str]) {
    let mut args = vec!["segy", "synth", "--out", s(out), "--size", size];
    args.extend_from_slice(extra);
    ok(&args);
}

// ---------------------------------------------------------------------------------------
// inspect
// ---------------------------------------------------------------------------------------

/// Every key the issue promises, with its JSON type.
fn assert_contract(v: &Value) {
    let obj = v.as_object().expect("inspect --json prints one object");
    for key in [
        "revision",
        "sample_format",
        "ext_headers",
        "samples",
        "traces",
    ] {
        assert!(obj[key].is_u64(), "{key} is a whole number: {}", obj[key]);
    }
    assert!(obj["sample_interval_us"].is_number());
    for key in ["endianness", "sorting", "text"] {
        assert!(obj[key].is_string(), "{key} is a string: {}", obj[key]);
    }
    assert!(matches!(v["endianness"].as_str(), Some("big" | "little")));
    assert!(matches!(
        v["sorting"].as_str(),
        Some("inline" | "crossline" | "unstructured")
    ));
    assert!(
        v["text_encoding"].is_null()
            || matches!(v["text_encoding"].as_str(), Some("ebcdic" | "ascii")),
        "text_encoding: {}",
        v["text_encoding"]
    );
    for key in ["ilines", "xlines", "offsets"] {
        ints(&obj[key]);
    }
}

#[test]
fn inspect_json_small() {
    let Some(d) = data() else { return };
    let v = inspect_json(&d.join("small.sgy"), &[]);
    assert_contract(&v);
    assert_eq!(v["revision"], 0);
    assert_eq!(v["sample_format"], 1);
    assert_eq!(v["endianness"], "big");
    assert_eq!(v["text_encoding"], "ebcdic");
    assert_eq!(v["ext_headers"], 0);
    assert_eq!(v["samples"], 50);
    assert_eq!(v["sample_interval_us"].as_f64(), Some(4000.0));
    assert_eq!(v["traces"], 25);
    assert_eq!(v["sorting"], "inline");
    assert_eq!(ints(&v["ilines"]), vec![1, 2, 3, 4, 5]);
    assert_eq!(ints(&v["xlines"]), vec![20, 21, 22, 23, 24]);
    assert_eq!(ints(&v["offsets"]), vec![1]);
    assert_eq!(v["irregular"], false);
    assert_eq!(v["missing_traces"], 0);
    let t = v["text"].as_str().unwrap();
    assert_eq!(t.chars().count(), 3200, "the whole first textual header");
    assert!(t.starts_with("C 1 DATE: 2016-09-19"), "{t}");
}

#[test]
fn inspect_json_lsb_f3_prestack_and_su() {
    let Some(d) = data() else { return };

    let v = inspect_json(&d.join("small-lsb.sgy"), &[]);
    assert_contract(&v);
    assert_eq!(v["endianness"], "little");
    assert_eq!(v["sample_format"], 1);
    assert_eq!(ints(&v["ilines"]), vec![1, 2, 3, 4, 5]);
    assert_eq!(ints(&v["xlines"]), vec![20, 21, 22, 23, 24]);

    let v = inspect_json(&d.join("f3.sgy"), &[]);
    assert_contract(&v);
    assert_eq!(v["sample_format"], 3);
    assert_eq!(v["revision"], 1);
    assert_eq!(v["samples"], 75);
    assert_eq!(v["traces"], 414);
    assert_eq!(ints(&v["ilines"]), (111..=133).collect::<Vec<_>>());
    assert_eq!(ints(&v["xlines"]), (875..=892).collect::<Vec<_>>());

    let v = inspect_json(&d.join("small-ps.sgy"), &[]);
    assert_contract(&v);
    assert_eq!(ints(&v["offsets"]), vec![1, 2]);
    assert_eq!(ints(&v["ilines"]), vec![1, 2, 3, 4]);
    assert_eq!(ints(&v["xlines"]), vec![1, 2, 3]);
    assert_eq!(v["traces"], 24);

    let v = inspect_json(&d.join("multi-text.sgy"), &[]);
    assert_contract(&v);
    assert_eq!(v["ext_headers"], 4);

    let v = inspect_json(&d.join("delay-scalar.sgy"), &[]);
    assert_contract(&v);
    assert_eq!(v["text_encoding"], "ascii");

    let v = inspect_json(&d.join("small.su"), &[]);
    assert_contract(&v);
    assert_eq!(v["kind"], "su");
    assert!(
        v["text_encoding"].is_null(),
        "SU files have no textual header"
    );
    assert_eq!(v["sample_format"], 5);
    assert_eq!(v["traces"], 25);
    assert_eq!(v["samples"], 50);
}

#[test]
fn inspect_custom_key_bytes_and_unstructured() {
    let Some(d) = data() else { return };
    let small = d.join("small.sgy");

    // Swapping the inline and crossline bytes swaps the lines and the sorting.
    let v = inspect_json(&small, &["--iline-byte", "193", "--xline-byte", "189"]);
    assert_contract(&v);
    assert_eq!(v["sorting"], "crossline");
    assert_eq!(ints(&v["ilines"]), vec![20, 21, 22, 23, 24]);
    assert_eq!(ints(&v["xlines"]), vec![1, 2, 3, 4, 5]);
    assert_eq!(v["iline_byte"], 193);
    assert_eq!(v["xline_byte"], 189);

    // Bytes 9-12 are zero in small.sgy: no grid, and the report says why.
    let v = inspect_json(&small, &["--iline-byte", "9"]);
    assert_eq!(v["sorting"], "unstructured");
    assert_eq!(ints(&v["ilines"]), Vec::<i64>::new());
    assert!(v["geometry_note"].as_str().unwrap().contains("share"));

    // An offset byte where every trace holds 0 still gives one offset.
    let v = inspect_json(&small, &["--offset-byte", "233"]);
    assert_eq!(ints(&v["offsets"]), vec![0]);
    assert_eq!(v["offset_byte"], 233);

    let v = inspect_json(&small, &["--unstructured"]);
    assert_contract(&v);
    assert_eq!(v["sorting"], "unstructured");
    assert_eq!(v["traces"], 25);
    for key in ["ilines", "xlines", "offsets"] {
        assert_eq!(ints(&v[key]), Vec::<i64>::new(), "{key}");
    }

    // Key bytes outside the 240-byte header, or whose field would run past it.
    for (flag, byte) in [
        ("--iline-byte", "0"),
        ("--iline-byte", "238"),
        ("--xline-byte", "240"),
        ("--offset-byte", "241"),
        ("--offset-byte", "60000"),
    ] {
        let err = fails(&["segy", "inspect", s(&small), flag, byte]);
        assert!(
            err.contains(&format!("byte position {byte}")),
            "{flag} {byte}: {err}"
        );
    }
}

#[test]
fn inspect_text_form() {
    let Some(d) = data() else { return };
    let out = ok(&["segy", "inspect", s(&d.join("small.sgy"))]);
    let t = text(&out.stdout);
    for want in [
        "SEG-Y file, 14600 bytes",
        "format      1 (4-byte IBM float), big-endian",
        "25 x 50 samples at 4000 us",
        "sorting     inline",
        "inlines     5 (1..5)",
        "crosslines  5 (20..24)",
        "C 1 DATE: 2016-09-19",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    let out = ok(&["segy", "inspect", s(&d.join("small.su"))]);
    assert!(text(&out.stdout).starts_with("SU file"));
}

// ---------------------------------------------------------------------------------------
// export
// ---------------------------------------------------------------------------------------

#[test]
fn export_traces_native_and_cubes() {
    let Some(d) = data() else { return };
    let t = TmpDir::new("export");

    let small = d.join("small.sgy");
    let traces = t.path("traces.npy");
    ok(&["segy", "export", s(&small), "--out", s(&traces)]);
    let a = npy(&traces);
    assert_eq!(a.dtype, DType::F32);
    assert_eq!(a.shape, vec![25, 50]);
    let f = SegyFile::open(&small, &OpenOptions::default()).unwrap();
    let want = f.read_all();
    assert_eq!(a.to_f32().unwrap(), want, "traces in file order");
    assert!(want.iter().any(|&x| x != 0.0));

    // The cube of an inline-sorted survey is its traces in file order.
    let cube = t.path("cube.npy");
    ok(&["segy", "export", s(&small), "--out", s(&cube), "--cube"]);
    let c = npy(&cube);
    assert_eq!(c.dtype, DType::F32);
    assert_eq!(c.shape, vec![5, 5, 50]);
    assert_eq!(c.to_f32().unwrap(), want);

    // Little-endian copy: the same numbers.
    let lsb = t.path("lsb.npy");
    ok(&[
        "segy",
        "export",
        s(&d.join("small-lsb.sgy")),
        "--out",
        s(&lsb),
    ]);
    assert_eq!(npy(&lsb).to_f32().unwrap(), want);

    // Pre-stack cube: [il, xl, offset, samples].
    let ps = t.path("ps.npy");
    ok(&[
        "segy",
        "export",
        s(&d.join("small-ps.sgy")),
        "--out",
        s(&ps),
        "--cube",
    ]);
    let c = npy(&ps);
    assert_eq!(c.shape, vec![4, 3, 2, 10]);
    assert_eq!(c.dtype, DType::F32);

    // f3: 2-byte integers; --dtype native keeps them as int16, equal to the float export.
    let f3 = d.join("f3.sgy");
    let native = t.path("f3-native.npy");
    let float = t.path("f3-float.npy");
    ok(&[
        "segy",
        "export",
        s(&f3),
        "--out",
        s(&native),
        "--dtype",
        "native",
    ]);
    ok(&["segy", "export", s(&f3), "--out", s(&float)]);
    let n = npy(&native);
    assert_eq!(n.dtype, DType::I16);
    assert_eq!(n.shape, vec![414, 75]);
    let fl = npy(&float);
    assert_eq!(fl.shape, vec![414, 75]);
    let as_f32: Vec<f32> = n.to_i16().unwrap().iter().map(|&x| x as f32).collect();
    assert_eq!(as_f32, fl.to_f32().unwrap());

    // Cubes are float32 only.
    let err = fails(&[
        "segy",
        "export",
        s(&f3),
        "--out",
        s(&t.path("x.npy")),
        "--cube",
        "--dtype",
        "native",
    ]);
    assert!(err.contains("float32"), "{err}");
}

#[test]
fn export_headers_parquet() {
    let Some(d) = data() else { return };
    let t = TmpDir::new("parquet");
    let out = t.path("traces.npy");
    let pq = t.path("headers.parquet");
    ok(&[
        "segy",
        "export",
        s(&d.join("small.sgy")),
        "--out",
        s(&out),
        "--headers",
        s(&pq),
    ]);
    assert_eq!(npy(&out).shape, vec![25, 50]);
    let bytes = std::fs::read(&pq).unwrap();
    assert!(bytes.len() > 8, "a non-empty Parquet file");
    assert_eq!(&bytes[..4], b"PAR1", "Parquet magic at the start");
    assert_eq!(
        &bytes[bytes.len() - 4..],
        b"PAR1",
        "Parquet magic at the end"
    );

    // With pyarrow, also read it back.
    let have_pyarrow = Command::new("python3")
        .args(["-c", "import pyarrow.parquet"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_pyarrow {
        return;
    }
    let script = "import sys, json, pyarrow.parquet as pq\n\
                  t = pq.read_table(sys.argv[1])\n\
                  print(json.dumps({'rows': t.num_rows, 'iline': t.column('iline').to_pylist(), \
                  'xline': t.column('CROSSLINE_3D').to_pylist()}))";
    let o = Command::new("python3")
        .args(["-c", script, s(&pq)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rows"], 25);
    let il = ints(&v["iline"]);
    assert_eq!(il[..6], [1, 1, 1, 1, 1, 2]);
    assert_eq!(ints(&v["xline"])[..6], [20, 21, 22, 23, 24, 20]);
}

#[test]
fn cube_export_of_shot_gathers_fails_clearly() {
    let Some(d) = data() else { return };
    let t = TmpDir::new("shot");
    let err = fails(&[
        "segy",
        "export",
        s(&d.join("shot-gather.sgy")),
        "--out",
        s(&t.path("c.npy")),
        "--cube",
    ]);
    assert!(err.contains("grid"), "{err}");
    // Traces still export.
    let out = t.path("t.npy");
    ok(&[
        "segy",
        "export",
        s(&d.join("shot-gather.sgy")),
        "--out",
        s(&out),
    ]);
    assert_eq!(npy(&out).shape, vec![61, 25]);
}

// ---------------------------------------------------------------------------------------
// synth
// ---------------------------------------------------------------------------------------

#[test]
fn synth_is_deterministic_with_labels() {
    let t = TmpDir::new("synth-det");
    let (a, la) = (t.path("a.sgy"), t.path("a.npy"));
    let (b, lb) = (t.path("b.sgy"), t.path("b.npy"));
    let (c, lc) = (t.path("c.sgy"), t.path("c.npy"));
    synth(
        &a,
        "12,10,40",
        &["--seed", "7", "--faults", "3", "--labels", s(&la)],
    );
    synth(
        &b,
        "12,10,40",
        &["--seed", "7", "--faults", "3", "--labels", s(&lb)],
    );
    synth(
        &c,
        "12,10,40",
        &["--seed", "8", "--faults", "3", "--labels", s(&lc)],
    );
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert!(read(&a) == read(&b), "same seed, same SEG-Y bytes");
    assert!(read(&la) == read(&lb), "same seed, same label bytes");
    assert!(read(&a) != read(&c), "another seed, another survey");
    assert_eq!(read(&a).len(), 3600 + 12 * 10 * (240 + 40 * 4));

    let labels = npy(&la);
    assert_eq!(labels.dtype, DType::U8);
    assert_eq!(labels.shape, vec![12, 10, 40]);
    let l = labels.to_u8().unwrap();
    assert!(l.iter().all(|&x| x <= 1), "labels are 0 or 1");
    assert!(l.contains(&1), "three faults label some samples");
    assert!(l.contains(&0));

    let v = inspect_json(&a, &[]);
    assert_contract(&v);
    assert_eq!(ints(&v["ilines"]), (1..=12).collect::<Vec<_>>());
    assert_eq!(ints(&v["xlines"]), (1..=10).collect::<Vec<_>>());
    assert_eq!(v["samples"], 40);
    assert_eq!(v["traces"], 120);
    assert_eq!(v["sorting"], "inline");
    assert!(v["text"].as_str().unwrap().contains("SEED 7"));

    let (z, lz) = (t.path("z.sgy"), t.path("z.npy"));
    synth(&z, "6,5,20", &["--faults", "0", "--labels", s(&lz)]);
    let labels = npy(&lz);
    assert_eq!(labels.shape, vec![6, 5, 20]);
    assert!(
        labels.to_u8().unwrap().iter().all(|&x| x == 0),
        "no faults, no labels"
    );
}

const FORMATS: [i64; 13] = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16];

#[test]
fn synth_every_format_and_byte_order_round_trips() {
    let t = TmpDir::new("synth-formats");
    for code in FORMATS {
        let mut exports = Vec::new();
        for endian in ["big", "little"] {
            let f = t.path(&format!("f{code}-{endian}.sgy"));
            let c = code.to_string();
            synth(
                &f,
                "3,4,16",
                &["--format", &c, "--endian", endian, "--seed", "3"],
            );
            let size = [0, 4, 4, 2, 0, 4, 8, 3, 1, 8, 4, 2, 8, 0, 0, 3, 1][code as usize];
            assert_eq!(
                std::fs::metadata(&f).unwrap().len(),
                3600 + 12 * (240 + 16 * size),
                "format {code}: file size"
            );
            let v = inspect_json(&f, &[]);
            assert_contract(&v);
            assert_eq!(v["sample_format"], code, "format {code} {endian}");
            assert_eq!(v["endianness"], endian, "format {code} {endian}");
            assert_eq!(v["samples"], 16);
            assert_eq!(v["traces"], 12);
            assert_eq!(ints(&v["ilines"]), vec![1, 2, 3]);
            assert_eq!(ints(&v["xlines"]), vec![1, 2, 3, 4]);
            let npy_path = t.path(&format!("f{code}-{endian}.npy"));
            ok(&["segy", "export", s(&f), "--out", s(&npy_path)]);
            let a = npy(&npy_path);
            assert_eq!(a.shape, vec![12, 16]);
            exports.push(a.to_f32().unwrap());
        }
        assert_eq!(
            exports[0], exports[1],
            "format {code}: both byte orders hold the same numbers"
        );
    }
}

#[test]
fn synth_refuses_bad_formats_and_sizes() {
    let t = TmpDir::new("synth-bad");
    let out = t.path("x.sgy");
    let err = fails(&[
        "segy",
        "synth",
        "--out",
        s(&out),
        "--size",
        "2,2,4",
        "--format",
        "4",
    ]);
    assert!(
        err.contains("format 4") && err.contains("obsolete"),
        "{err}"
    );
    assert!(!out.exists(), "no file left behind");
    let err = fails(&[
        "segy",
        "synth",
        "--out",
        s(&out),
        "--size",
        "2,2,4",
        "--format",
        "13",
    ]);
    assert!(err.contains("unknown sample format 13"), "{err}");
    assert!(!out.exists(), "no file left behind");

    // Sizes are checked while parsing the arguments (clap's usage error).
    for (size, want) in [
        ("0,1,1", "at least 1"),
        ("3,3", "three numbers"),
        ("3,x,3", "not a whole number"),
    ] {
        let o = mlp(&["segy", "synth", "--out", s(&out), "--size", size]);
        let err = text(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(1 | 2)),
            "--size {size}: {:?} {err}",
            o.status.code()
        );
        assert_no_panic(&err);
        assert!(err.contains(want), "--size {size}: {err}");
        assert!(!out.exists(), "no file left behind");
    }
}

// ---------------------------------------------------------------------------------------
// Irregular surveys
// ---------------------------------------------------------------------------------------

/// Copies a SEG-Y file (3600 header bytes, fixed-size traces) without traces `drop`.
fn drop_traces(src: &Path, dst: &Path, trace_len: usize, drop: &[usize]) {
    let b = std::fs::read(src).unwrap();
    let mut out = b[..3600].to_vec();
    for (i, tr) in b[3600..].chunks(trace_len).enumerate() {
        assert_eq!(tr.len(), trace_len);
        if !drop.contains(&i) {
            out.extend_from_slice(tr);
        }
    }
    std::fs::write(dst, out).unwrap();
}

#[test]
fn irregular_surveys_report_missing_traces_and_export_a_mask() {
    let t = TmpDir::new("irregular");
    for format in ["1", "5"] {
        let full = t.path(&format!("full{format}.sgy"));
        let holes = t.path(&format!("holes{format}.sgy"));
        synth(
            &full,
            "3,4,10",
            &["--format", format, "--faults", "0", "--seed", "5"],
        );
        // 3 inlines x 4 crosslines; remove (il 2, xl 2) and (il 3, xl 4).
        drop_traces(&full, &holes, 240 + 10 * 4, &[5, 11]);

        let v = inspect_json(&holes, &[]);
        assert_contract(&v);
        assert_eq!(v["traces"], 10);
        assert_eq!(v["irregular"], true);
        assert_eq!(v["missing_traces"], 2);
        assert_eq!(ints(&v["ilines"]), vec![1, 2, 3]);
        assert_eq!(ints(&v["xlines"]), vec![1, 2, 3, 4]);
        let missing: Vec<Vec<i64>> = v["missing"].as_array().unwrap().iter().map(ints).collect();
        assert_eq!(missing, vec![vec![2, 2, 0], vec![3, 4, 0]]);
        let human = text(&ok(&["segy", "inspect", s(&holes)]).stdout);
        assert!(human.contains("2 missing trace(s)"), "{human}");

        let (cube, mask) = (t.path("cube.npy"), t.path("mask.npy"));
        let out = ok(&[
            "segy",
            "export",
            s(&holes),
            "--out",
            s(&cube),
            "--cube",
            "--mask",
            s(&mask),
        ]);
        assert!(text(&out.stderr).contains("2 trace(s) are missing"));
        let m = npy(&mask);
        assert_eq!(m.dtype, DType::Bool);
        assert_eq!(m.shape, vec![3, 4]);
        let m = m.to_bool().unwrap();
        for (cell, &present) in m.iter().enumerate() {
            assert_eq!(present, cell != 5 && cell != 11, "mask cell {cell}");
        }
        // Present cells hold the original traces, missing ones zeros.
        let full_traces = t.path("full.npy");
        ok(&["segy", "export", s(&full), "--out", s(&full_traces)]);
        let want = npy(&full_traces).to_f32().unwrap();
        let c = npy(&cube);
        assert_eq!(c.shape, vec![3, 4, 10]);
        let c = c.to_f32().unwrap();
        for cell in 0..12 {
            let got = &c[cell * 10..(cell + 1) * 10];
            if cell == 5 || cell == 11 {
                assert!(got.iter().all(|&x| x == 0.0), "cell {cell} is padding");
            } else {
                assert_eq!(got, &want[cell * 10..(cell + 1) * 10], "cell {cell}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

/// Runs inspect and a trace export on a bad file: both must fail cleanly, naming the file.
fn both_fail(file: &Path, t: &TmpDir) -> String {
    let err = fails(&["segy", "inspect", s(file), "--json"]);
    let err2 = fails(&["segy", "export", s(file), "--out", s(&t.path("never.npy"))]);
    assert_eq!(err, err2, "inspect and export give the same error");
    assert!(!t.path("never.npy").exists(), "no output for a bad input");
    assert!(err.contains(s(file)), "the error names the file: {err}");
    err
}

#[test]
fn bad_shared_files_fail_with_offsets() {
    let Some(d) = data() else { return };
    let t = TmpDir::new("bad-shared");
    let err = both_fail(&d.join("broken.sgy"), &t);
    assert!(
        err.contains("truncated") && err.contains("byte offset 10000"),
        "{err}"
    );
    assert!(err.contains("byte offset 10768"), "{err}");
    let err = both_fail(&d.join("text.sgy"), &t);
    assert!(
        err.contains("no traces") && err.contains("byte 3600"),
        "{err}"
    );
}

#[test]
fn bad_files_fail_cleanly() {
    let t = TmpDir::new("bad");
    let good = t.path("good.sgy");
    synth(&good, "3,4,10", &["--seed", "1"]);
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(bytes.len(), 3600 + 12 * 280);
    let write = |name: &str, b: &[u8]| {
        let p = t.path(name);
        std::fs::write(&p, b).unwrap();
        p
    };

    let err = both_fail(&write("empty.sgy", &[]), &t);
    assert!(err.contains("empty (0 bytes)"), "{err}");

    let err = both_fail(&write("short.sgy", &bytes[..100]), &t);
    assert!(err.contains("100 bytes") && err.contains("3600"), "{err}");

    // Inside the binary header.
    let err = both_fail(&write("half-binary.sgy", &bytes[..3400]), &t);
    assert!(
        err.contains("truncated") && err.contains("3200..3600"),
        "{err}"
    );

    let err = fails(&["segy", "inspect", s(&t.0)]);
    assert!(err.contains("directory"), "{err}");

    let missing = t.path("does-not-exist.sgy");
    let err = fails(&["segy", "inspect", s(&missing)]);
    assert!(
        err.contains("does-not-exist.sgy") && err.contains("No such file"),
        "{err}"
    );

    let mut b = bytes.clone();
    b[3224..3226].copy_from_slice(&99i16.to_be_bytes());
    let err = both_fail(&write("format99.sgy", &b), &t);
    assert!(
        err.contains("unknown sample format code 99") && err.contains("byte offset 3224"),
        "{err}"
    );

    let mut b = bytes.clone();
    b[3224..3226].copy_from_slice(&4i16.to_be_bytes());
    let err = both_fail(&write("format4.sgy", &b), &t);
    assert!(
        err.contains("format 4") && err.contains("byte offset 3224"),
        "{err}"
    );

    let mut b = bytes.clone();
    b[3220..3222].copy_from_slice(&[0, 0]);
    b[3600 + 114..3600 + 116].copy_from_slice(&[0, 0]);
    let err = both_fail(&write("zero-samples.sgy", &b), &t);
    assert!(
        err.contains("zero samples") && err.contains("byte offset 3220"),
        "{err}"
    );

    // Trailing garbage: the trace count does not fit the file size.
    let mut b = bytes.clone();
    b.extend_from_slice(&[1, 2, 3, 4, 5]);
    let err = both_fail(&write("trailing.sgy", &b), &t);
    assert!(
        err.contains("not a whole number of 280-byte traces")
            && err.contains("5 bytes left over")
            && err.contains("byte offset 6960"),
        "{err}"
    );

    // A truncated last trace.
    let err = both_fail(&write("cut.sgy", &bytes[..bytes.len() - 17]), &t);
    assert!(
        err.contains("truncated") && err.contains("byte offset 6680"),
        "{err}"
    );

    // A sample count too large for the file.
    let mut b = bytes.clone();
    b[3220..3222].copy_from_slice(&65535u16.to_be_bytes());
    let err = both_fail(&write("huge-ns.sgy", &b), &t);
    assert!(err.contains("byte offset 3600"), "{err}");

    // Extended textual headers that are not in the file.
    let mut b = bytes.clone();
    b[3504..3506].copy_from_slice(&5i16.to_be_bytes());
    let err = both_fail(&write("ext.sgy", &b), &t);
    assert!(
        err.contains("extended textual headers") && err.contains("byte offset 3504"),
        "{err}"
    );
}

#[test]
fn bad_rev2_headers_fail_cleanly() {
    let t = TmpDir::new("bad-rev2");
    let good = t.path("good.sgy");
    synth(&good, "3,4,10", &["--seed", "1", "--revision", "2"]);
    let bytes = std::fs::read(&good).unwrap();
    let v = inspect_json(&good, &[]);
    assert_eq!(v["revision"], 2);
    assert_eq!(v["traces"], 12);
    let write = |name: &str, b: &[u8]| {
        let p = t.path(name);
        std::fs::write(&p, b).unwrap();
        p
    };

    // More traces declared (bytes 3513-3520) than the file holds.
    let mut b = bytes.clone();
    b[3512..3520].copy_from_slice(&13u64.to_be_bytes());
    let err = both_fail(&write("count.sgy", &b), &t);
    assert!(
        err.contains("13 traces") && err.contains("byte offset 3512"),
        "{err}"
    );

    // The first trace beyond the end of the file (bytes 3521-3528).
    let mut b = bytes.clone();
    b[3520..3528].copy_from_slice(&1_000_000u64.to_be_bytes());
    let err = both_fail(&write("first.sgy", &b), &t);
    assert!(err.contains("byte offset 3520"), "{err}");

    // An implausible number of additional trace headers (bytes 3507-3510).
    let mut b = bytes.clone();
    b[3506..3510].copy_from_slice(&100_000i32.to_be_bytes());
    let err = both_fail(&write("extra.sgy", &b), &t);
    assert!(err.contains("byte offset 3506"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Known bugs (reported, not fixed here): run with `--ignored` to see them fail.
// ---------------------------------------------------------------------------------------

#[test]
fn export_onto_its_own_input_is_refused() {
    let t = TmpDir::new("self-export");
    let f = t.path("in.sgy");
    synth(&f, "3,4,10", &[]);
    let before = std::fs::read(&f).unwrap();
    for extra in [&[][..], &["--cube"][..]] {
        let mut args = vec!["segy", "export", s(&f), "--out", s(&f)];
        args.extend_from_slice(extra);
        fails(&args);
        assert_eq!(std::fs::read(&f).unwrap(), before, "the input is untouched");
    }
    let out = t.path("x.npy");
    fails(&[
        "segy",
        "export",
        s(&f),
        "--out",
        s(&out),
        "--headers",
        s(&f),
    ]);
    assert_eq!(std::fs::read(&f).unwrap(), before, "the input is untouched");
}

#[test]
fn failed_synth_keeps_existing_files() {
    let t = TmpDir::new("synth-keep");
    let (out, labels) = (t.path("keep.sgy"), t.path("keep.npy"));
    for bad in [
        &["--size", "2,2,1"][..],
        &["--size", "2,2,4", "--revision", "3"][..],
        &["--size", "2,2,4", "--dt-us", "0"][..],
        &["--size", "2,2,4", "--peak-hz", "1000"][..],
    ] {
        std::fs::write(&out, b"precious").unwrap();
        std::fs::write(&labels, b"precious").unwrap();
        let mut args = vec!["segy", "synth", "--out", s(&out), "--labels", s(&labels)];
        args.extend_from_slice(bad);
        fails(&args);
        assert!(out.exists(), "{bad:?}: --out was deleted");
        assert!(labels.exists(), "{bad:?}: --labels was deleted");
    }
}

#[test]
fn inspect_into_a_closed_pipe_does_not_panic() {
    let t = TmpDir::new("pipe");
    let f = t.path("many-lines.sgy");
    // 8000 inlines: the JSON is larger than a pipe buffer, so the write meets the closed
    // pipe whatever the timing.
    synth(&f, "8000,1,2", &["--faults", "0"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlp"))
        .args(["segy", "inspect", s(&f), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_no_panic(&err);
    assert_ne!(out.status.code(), Some(101), "{err}");
}

#[test]
fn synth_refuses_minus_infinite_snr() {
    let t = TmpDir::new("snr");
    let out = t.path("x.sgy");
    let err = fails(&[
        "segy",
        "synth",
        "--out",
        s(&out),
        "--size",
        "2,2,4",
        "--snr=-inf",
    ]);
    assert!(err.contains("snr"), "{err}");
}

#[test]
fn io_errors_name_the_path_once() {
    let t = TmpDir::new("path-once");
    let missing = t.path("does-not-exist.sgy");
    let err = fails(&["segy", "inspect", s(&missing)]);
    assert_eq!(err.matches("does-not-exist.sgy").count(), 1, "{err}");
    let err = fails(&["segy", "inspect", s(&t.0)]);
    assert_eq!(err.matches(s(&t.0)).count(), 1, "{err}");
}
