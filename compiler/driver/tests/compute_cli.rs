//! `mlp devices` and `mlp bench` as a user runs them: refusals, `--profile`, stderr hygiene,
//! and bad input: every refusal exits 1 with a message naming the problem (file, shape, dtype,
//! value), never a panic (exit 101) or an abort.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlp"))
        .args(args)
        .output()
        .expect("run mlp")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mlp-compute-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `bench unet` dataset: `train/` and `val/` with one survey each of `train` and `val`
/// 16 x 16 sections.
fn unet_data(name: &str, train: usize, val: usize) -> PathBuf {
    let d = tmp(name);
    for (split, n) in [("train", train), ("val", val)] {
        let dir = d.join(split);
        std::fs::create_dir_all(&dir).unwrap();
        let len = n * 16 * 16;
        let cube: Vec<f32> = (0..len)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let labels: Vec<u8> = (0..len).map(|i| u8::from(i % 16 == 5)).collect();
        let shape = [n, 16, 16];
        mlp_segy::npy::write_npy(dir.join("s1.cube.npy"), &shape, &cube).unwrap();
        mlp_segy::npy::write_npy(dir.join("s1.labels.npy"), &shape, &labels).unwrap();
    }
    d
}

#[test]
fn bench_unet_refuses_a_batch_larger_than_the_training_set() {
    let d = unet_data("batch", 3, 2);
    let data = d.to_str().unwrap();
    let out = mlp(&[
        "bench", "unet", "--data", data, "--device", "cpu", "--epochs", "1", "--batch", "4",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("--batch 4 is larger than the training set") && err.contains("holds 3 images"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let out = mlp(&[
        "bench", "unet", "--data", data, "--device", "cpu", "--epochs", "1", "--batch", "0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--batch must be at least 1"));
    // The whole training set as one batch is fine (`--profile` on the CPU only warns).
    let out = unet(data, &["--batch", "3", "--json", "--profile"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["batch"], 3);
    assert_eq!(v["epochs"].as_array().unwrap().len(), 1);
    let why = v["profile"]["error"].as_str().unwrap();
    assert!(why.contains("not a GPU"), "{why}");
    assert!(
        text(&out.stderr).contains("warning: --profile:"),
        "{}",
        text(&out.stderr)
    );
}

/// `--profile` on the GPU (lavapipe where there is no GPU): per-kernel rows in the JSON, or
/// the reason there are none; skipped without any adapter.
#[test]
fn bench_kernels_profile_reports_gpu_time_per_kernel() {
    let out = mlp(&[
        "bench",
        "kernels",
        "--device",
        "gpu",
        "--allow-cpu-adapter",
        "--ops",
        "add",
        "--scale",
        "64",
        "--repeats",
        "2",
        "--json",
        "--profile",
    ]);
    let Some(v) = gpu_json(&out) else { return };
    let p = &v["profile"];
    if let Some(why) = p["error"].as_str() {
        assert!(why.contains("timestamp"), "{why}");
        return;
    }
    let rows = p["kernels"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{p}");
    assert_eq!(rows[0]["kernel"], "add.wgsl");
    // One checked dispatch, the warm-up runs (at least one) and two timed ones.
    let calls = rows[0]["calls"].as_u64().unwrap();
    assert!(calls >= 4, "{p}");
    assert_eq!(p["dispatches"], calls);
    assert!((rows[0]["percent"].as_f64().unwrap() - 100.0).abs() < 1e-9);
    assert!(p["gpu_ms"].as_f64().unwrap() > 0.0, "{p}");
}

/// `MLP_GPU_AUTOTUNE=on` on any adapter (lavapipe's default is off): the JSON names each tuned
/// product with every candidate's time and the kernel kept; `off` tunes nothing.
#[test]
fn bench_kernels_reports_autotuned_kernels() {
    let run = |mode: &str| {
        Command::new(env!("CARGO_BIN_EXE_mlp"))
            .args([
                "bench",
                "kernels",
                "--device",
                "gpu",
                "--allow-cpu-adapter",
                "--ops",
                "matmul",
                "--scale",
                "2",
                "--repeats",
                "1",
                "--json",
            ])
            .env("MLP_GPU_AUTOTUNE", mode)
            .output()
            .expect("run mlp")
    };
    let Some(v) = gpu_json(&run("on")) else {
        return;
    };
    let t = &v["autotune"];
    assert_eq!(t["enabled"], true, "{t}");
    let choices = t["choices"].as_array().unwrap();
    // The 512 x 512 x 512 products, A plain and A transposed (the batched one is too small).
    assert_eq!(choices.len(), 2, "{t}");
    for c in choices {
        assert!(
            c["op"].as_str().unwrap().starts_with("matmul 512x512x512"),
            "{c}"
        );
        let cands = c["candidates"].as_array().unwrap();
        assert_eq!(cands.len(), 5, "{c}");
        assert_eq!(cands[0][0], c["default"], "{c}");
        assert!(cands.iter().any(|k| k[0] == c["chosen"]), "{c}");
        assert!(cands.iter().all(|k| k[1].as_f64().unwrap() > 0.0), "{c}");
    }
    let v: serde_json::Value = serde_json::from_slice(&run("off").stdout).unwrap();
    assert_eq!(v["autotune"]["enabled"], false);
    assert!(v["autotune"]["choices"].as_array().unwrap().is_empty());
}

/// The JSON of a `--device gpu --json` run; `None` (after [`no_adapter`]) when it found no
/// adapter.
fn gpu_json(out: &Output) -> Option<serde_json::Value> {
    if !out.status.success() {
        let err = text(&out.stderr);
        assert!(err.contains("--device gpu"), "{err}");
        no_adapter(&err);
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).expect("JSON on stdout"))
}

/// Without an adapter GPU tests skip, except under `CI=true` (CI installs lavapipe), where
/// that is a failure.
fn no_adapter(err: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no GPU adapter under CI=true (CI installs mesa-vulkan-drivers for lavapipe): {err}"
    );
    eprintln!("SKIPPED: no GPU adapter (a GPU, or Mesa's lavapipe): {err}");
}

/// A kernel-choice knob with a value it does not know is named in a warning and ignored: a
/// typo must not pass for a measured variant.
#[test]
fn unknown_kernel_knobs_are_named_and_ignored() {
    let out = Command::new(env!("CARGO_BIN_EXE_mlp"))
        .args([
            "bench",
            "kernels",
            "--device",
            "gpu",
            "--allow-cpu-adapter",
            "--ops",
            "add",
            "--scale",
            "64",
            "--repeats",
            "1",
        ])
        .env("MLP_GEMM_TILE", "96x96")
        .env("MLP_CONV_TILE", "48")
        .env("MLP_CONV_FAST", "maybe")
        .env("MLP_GPU_AUTOTUNE", "sometimes")
        .output()
        .expect("run mlp");
    let err = text(&out.stderr);
    if !out.status.success() {
        assert!(err.contains("--device gpu"), "{err}");
        no_adapter(&err);
        return;
    }
    for want in [
        "warning: MLP_GEMM_TILE=96x96 ignored: the values are 64x64",
        "warning: MLP_CONV_TILE=48 ignored: the values are 32, 64 and 128",
        "warning: MLP_CONV_FAST=maybe ignored",
        "warning: MLP_GPU_AUTOTUNE=sometimes ignored",
    ] {
        assert!(err.contains(want), "{want} missing from: {err}");
    }
    assert!(text(&out.stdout).contains("add"));
}

/// Headless machines (XDG_RUNTIME_DIR unset or not a directory) get no libwayland noise from
/// Mesa's drivers, and the private directory made for the run is removed at exit.
#[test]
fn devices_prints_no_xdg_runtime_dir_noise() {
    for env in [None, Some("/nonexistent/xdg")] {
        let scratch = tmp(if env.is_none() {
            "xdg-unset"
        } else {
            "xdg-bad"
        });
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlp"));
        cmd.arg("devices").env("TMPDIR", &scratch);
        match env {
            None => cmd.env_remove("XDG_RUNTIME_DIR"),
            Some(v) => cmd.env("XDG_RUNTIME_DIR", v),
        };
        let out = cmd.output().expect("run mlp");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
        assert!(text(&out.stdout).contains("auto:"));
        let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// Exit 1, one `error:` line containing every `want`, no panic.
fn refused(out: &Output, want: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for w in want {
        assert!(err.contains(w), "want {w:?} in: {err}");
    }
}

/// A `bench unet` dataset of 4 + 2 sections of 16 x 16, with `cube` and `labels` writing a
/// split's files (n sections).
fn dataset(
    name: &str,
    cube: &dyn Fn(&Path, usize),
    labels: &dyn Fn(&Path, usize),
) -> (PathBuf, String) {
    let d = tmp(name);
    for (split, n) in [("train", 4), ("val", 2)] {
        let dir = d.join(split);
        std::fs::create_dir_all(&dir).unwrap();
        cube(&dir.join("s.cube.npy"), n);
        labels(&dir.join("s.labels.npy"), n);
    }
    let s = d.to_str().unwrap().to_string();
    (d, s)
}

fn good_cube(p: &Path, n: usize) {
    let v: Vec<f32> = (0..n * 256).map(|i| (i as f32 * 0.1).sin()).collect();
    mlp_segy::npy::write_npy(p, &[n, 16, 16], &v).unwrap();
}

fn good_labels(p: &Path, n: usize) {
    let v: Vec<u8> = (0..n * 256).map(|i| u8::from(i % 16 == 5)).collect();
    mlp_segy::npy::write_npy(p, &[n, 16, 16], &v).unwrap();
}

fn unet(data: &str, extra: &[&str]) -> Output {
    // Flags given in `extra` (with their values, or switches) replace the defaults.
    let mut args = vec![
        "bench",
        "unet",
        "--data",
        data,
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--depth",
        "1",
        "--base-channels",
        "2",
    ];
    let mut rest = extra;
    while let [flag, tail @ ..] = rest {
        match tail {
            // A flag with a value: replaces the default's value, or is added.
            [value, more @ ..] if !value.starts_with("--") => {
                match args.iter().position(|a| a == flag) {
                    Some(k) => args[k + 1] = value,
                    None => args.extend([*flag, *value]),
                }
                rest = more;
            }
            // A switch.
            _ => {
                args.push(flag);
                rest = tail;
            }
        }
    }
    mlp(&args)
}

#[test]
fn bench_unet_names_bad_data() {
    // Float labels, labels that are not 0/1, NaN amplitudes, float64 amplitudes.
    let (_d, data) = dataset("float-labels", &good_cube, &|p, n| {
        let v = vec![1f32; n * 256];
        mlp_segy::npy::write_npy(p, &[n, 16, 16], &v).unwrap();
    });
    refused(&unet(&data, &[]), &["s.labels.npy", "uint8", "float32"]);
    let (_d, data) = dataset("label-255", &good_cube, &|p, n| {
        let v: Vec<u8> = (0..n * 256)
            .map(|i| if i == 37 { 255 } else { 0 })
            .collect();
        mlp_segy::npy::write_npy(p, &[n, 16, 16], &v).unwrap();
    });
    refused(
        &unet(&data, &[]),
        &["s.labels.npy", "label 255 at [0, 2, 5]", "0 or 1"],
    );
    let (_d, data) = dataset(
        "nan",
        &|p, n| {
            let mut v = vec![0.5f32; n * 256];
            v[256 + 3] = f32::NAN;
            mlp_segy::npy::write_npy(p, &[n, 16, 16], &v).unwrap();
        },
        &good_labels,
    );
    refused(&unet(&data, &[]), &["s.cube.npy", "NaN at [1, 0, 3]"]);
    let (_d, data) = dataset(
        "f64",
        &|p, n| {
            let v = vec![0.5f64; n * 256];
            mlp_segy::npy::write_npy(p, &[n, 16, 16], &v).unwrap();
        },
        &good_labels,
    );
    refused(&unet(&data, &[]), &["s.cube.npy", "float32", "float64"]);
    // Cubes of no inlines, and sections of no samples.
    let (_d, data) = dataset(
        "empty",
        &|p, _| mlp_segy::npy::write_npy::<f32>(p, &[0, 16, 16], &[]).unwrap(),
        &|p, _| mlp_segy::npy::write_npy::<u8>(p, &[0, 16, 16], &[]).unwrap(),
    );
    refused(&unet(&data, &[]), &["train holds no sections"]);
    let (_d, data) = dataset(
        "no-samples",
        &|p, n| mlp_segy::npy::write_npy::<f32>(p, &[n, 16, 0], &[]).unwrap(),
        &|p, n| mlp_segy::npy::write_npy::<u8>(p, &[n, 16, 0], &[]).unwrap(),
    );
    refused(&unet(&data, &[]), &["[16, 0]", "empty"]);
    // What was fine already stays fine: shapes, truncation, missing folders.
    let (_d, data) = dataset("shapes", &good_cube, &|p, n| {
        let v = vec![0u8; n * 128];
        mlp_segy::npy::write_npy(p, &[n, 16, 8], &v).unwrap();
    });
    refused(&unet(&data, &[]), &["[4, 16, 16]", "[4, 16, 8]"]);
    let (d, data) = dataset("truncated", &good_cube, &good_labels);
    let f = d.join("train/s.cube.npy");
    let b = std::fs::read(&f).unwrap();
    std::fs::write(&f, &b[..b.len() - 7]).unwrap();
    refused(&unet(&data, &[]), &["s.cube.npy", "truncated"]);
    std::fs::write(&f, &b).unwrap();
    assert!(unet(&data, &[]).status.success());
    std::fs::remove_dir_all(d.join("val")).unwrap();
    refused(&unet(&data, &[]), &["val", "No such file"]);
}

#[test]
fn bench_unet_refuses_impossible_models() {
    let (_d, data) = dataset("models", &good_cube, &good_labels);
    refused(
        &unet(&data, &["--depth", "64"]),
        &["depth 64", "[1, 16, 16]"],
    );
    refused(&unet(&data, &["--depth", "5"]), &["depth 5"]);
    refused(&unet(&data, &["--base-channels", "0"]), &["base 0"]);
    // Too many values to count, and too many to allocate: errors, not a panic or an abort.
    refused(
        &unet(&data, &["--base-channels", "4611686018427387904"]),
        &["more elements than fit"],
    );
    refused(
        &unet(&data, &["--base-channels", "1000000"]),
        &["out of host memory"],
    );
    refused(&unet(&data, &["--epochs", "0"]), &["--epochs"]);
}

#[test]
fn bench_kernels_refuses_bad_sizes() {
    let base = ["bench", "kernels", "--device", "cpu", "--ops", "add"];
    for (flag, value) in [("--scale", "0"), ("--repeats", "0"), ("--square", "0")] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        refused(&mlp(&args), &[flag]);
    }
    // A product far beyond memory is refused before anything is allocated.
    let out = mlp(&[
        "bench",
        "kernels",
        "--device",
        "cpu",
        "--ops",
        "matmul",
        "--scale",
        "64",
        "--repeats",
        "1",
        "--square",
        "1000000",
    ]);
    refused(&out, &["out of host memory", "[1000000, 1000000]"]);
    refused(
        &mlp(&["bench", "kernels", "--device", "cpu", "--ops", "nosuchop"]),
        &["nosuchop"],
    );
}

#[test]
fn devices_json_is_valid_json() {
    let out = mlp(&["devices", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["adapters"].is_array(), "{v}");
    assert!(v["auto"]["device"].is_string(), "{v}");
}

/// `bench/gpu_summary.py` reads what `gpu_compare.sh` writes: real `bench kernels` JSON (CPU
/// here) beside a PyTorch file of the same cases gives the matmul share and the convolution
/// ratio. Skipped without python3.
#[test]
fn gpu_summary_reads_bench_json() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no python3 for bench/gpu_summary.py");
        return;
    }
    let d = tmp("gpu-summary");
    let out = mlp(&[
        "bench",
        "kernels",
        "--device",
        "cpu",
        "--ops",
        "matmul,conv2d",
        "--scale",
        "8",
        "--square",
        "64",
        "--repeats",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(d.join("mlp_kernels_gpu.json"), &out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ks = v["kernels"].as_array().unwrap();
    let sq = ks
        .iter()
        .find(|k| k["op"] == "matmul" && k["inputs"][0] == serde_json::json!([64, 64]))
        .expect("the 64 x 64 square product");
    let conv = ks.iter().find(|k| k["op"] == "conv2d").unwrap();
    let (x, w) = (&conv["inputs"][0], &conv["inputs"][1]);
    // PyTorch at exactly twice mlp's rate on both.
    let torch = serde_json::json!({"kernels": [
        {"op": "matmul", "shape": [64, 64, 64], "gflops": 2.0 * sq["gflops"].as_f64().unwrap()},
        {"op": "conv2d", "shape": [x[0], x[1], w[0], x[2], w[2], 1],
         "gflops": 2.0 * conv["gflops"].as_f64().unwrap()},
    ]});
    std::fs::write(d.join("torch_kernels.json"), torch.to_string()).unwrap();
    std::fs::write(d.join("summary.txt"), "mlp_kernels_gpu: exit 0 in 1 s\n").unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../runtime/compute/bench/gpu_summary.py"
    );
    let res = Command::new("python3")
        .arg(script)
        .arg(&d)
        .output()
        .unwrap();
    let md = text(&res.stdout);
    assert!(res.status.success(), "{}{md}", text(&res.stderr));
    assert!(md.contains("| 64 |") && md.contains("| 50% |"), "{md}");
    assert!(md.contains("best share 50% -> NOT met"), "{md}");
    let conv_row = md
        .lines()
        .find(|l| l.starts_with("| conv2d | ") && l.contains("| 0.50 |"));
    assert!(conv_row.is_some(), "{md}");
    assert!(md.contains("missing (mlp_unet_gpu)"), "{md}");
}
