//! `mlp devices` and `mlp bench` as a user runs them: refusals, `--profile`, stderr hygiene.

use std::path::PathBuf;
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
    let out = mlp(&[
        "bench",
        "unet",
        "--data",
        data,
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--batch",
        "3",
        "--depth",
        "1",
        "--base-channels",
        "2",
        "--json",
        "--profile",
    ]);
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
    if !out.status.success() {
        let err = text(&out.stderr);
        assert!(err.contains("--device gpu"), "{err}");
        no_adapter(&err);
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["profile"];
    if let Some(why) = p["error"].as_str() {
        assert!(why.contains("timestamp"), "{why}");
        return;
    }
    let rows = p["kernels"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{p}");
    assert_eq!(rows[0]["kernel"], "add.wgsl");
    // One checked dispatch and two timed ones.
    assert_eq!(rows[0]["calls"], 3);
    assert_eq!(p["dispatches"], 3);
    assert!((rows[0]["percent"].as_f64().unwrap() - 100.0).abs() < 1e-9);
    assert!(p["gpu_ms"].as_f64().unwrap() > 0.0, "{p}");
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
