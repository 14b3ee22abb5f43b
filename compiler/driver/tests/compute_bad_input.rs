//! `mlp bench` and `mlp devices` fed bad input: every refusal exits 1 with a message naming
//! the problem (file, shape, dtype, value), never a panic (exit 101) or an abort.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlp"))
        .args(args)
        .output()
        .expect("run mlp")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mlp-compute-bad-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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
    // Flags given in `extra` replace the defaults.
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
    for pair in extra.chunks(2) {
        match args.iter().position(|a| *a == pair[0]) {
            Some(k) => args[k + 1] = pair[1],
            None => args.extend_from_slice(pair),
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
