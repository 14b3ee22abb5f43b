//! Bad input at the public entry points, as a demanding user supplies it: files that are not
//! checkpoints, checkpoints of other models, impossible configurations and models, NaN and
//! out-of-range data, shapes too large to exist. Every case is an error naming the problem,
//! never a panic or an aborted process, and a failed save keeps the earlier checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlp_compute::cpu::CpuBackend;
use mlp_compute::graph::{Graph, Init, LossKind};
use mlp_compute::model::{trace_autoencoder, unet, Head, ModelSpec, SegLoss, UNetConfig};
use mlp_compute::train::{Dataset, LrSchedule, Optimizer, TrainConfig, Trainer};
use mlp_compute::{Backend, ComputeError, Op, Padding, Tensor};

fn backend() -> Arc<dyn Backend> {
    Arc::new(CpuBackend::new())
}

fn config(batch: usize) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size: batch,
        ..TrainConfig::default()
    }
}

/// An autoencoder 8 -> 4 -> 8 trainer (batch 4).
fn autoencoder() -> Trainer {
    Trainer::new(backend(), trace_autoencoder(8, &[4]).unwrap(), config(4)).unwrap()
}

/// A tiny U-Net on 8 x 8 images (BCE + Dice, sigmoid head).
fn tiny_unet() -> UNetConfig {
    UNetConfig {
        height: 8,
        width: 8,
        depth: 1,
        base_channels: 2,
        ..UNetConfig::default()
    }
}

fn err_of<T>(r: mlp_compute::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

// ---- Checkpoint files ----------------------------------------------------------------------

/// A checkpoint file's tensors and metadata, to rewrite as another file.
struct Parts {
    tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
    meta: HashMap<String, String>,
}

fn parts(path: &Path) -> Parts {
    let bytes = std::fs::read(path).unwrap();
    let (_, m) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = m.metadata().clone().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Parts {
        tensors,
        meta: meta.into_iter().collect(),
    }
}

fn write_parts(p: &Parts, path: &Path) -> PathBuf {
    let views: Vec<(String, safetensors::tensor::TensorView)> = p
        .tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, Some(p.meta.clone())).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn saved_autoencoder(dir: &Path) -> PathBuf {
    let path = dir.join("good.safetensors");
    autoencoder().save_checkpoint(&path).unwrap();
    path
}

#[test]
fn files_that_are_not_checkpoints_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read(saved_autoencoder(d)).unwrap();
    let mut t = autoencoder();
    let mut huge_header = good.clone();
    huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: [(&str, Option<Vec<u8>>, &str); 6] = [
        ("missing", None, "No such file"),
        ("empty", Some(vec![]), "the file is empty"),
        (
            "truncated",
            Some(good[..good.len() - 9].to_vec()),
            "safetensors",
        ),
        ("stub", Some(good[..20].to_vec()), "safetensors"),
        ("huge-header", Some(huge_header), "safetensors"),
        ("random", Some(random), "safetensors"),
    ];
    for (name, bytes, want) in cases {
        let path = d.join(name);
        if let Some(b) = bytes {
            std::fs::write(&path, b).unwrap();
        }
        for err in [
            err_of(t.load_checkpoint(&path)),
            err_of(Trainer::from_checkpoint(backend(), &path)),
        ] {
            assert!(err.contains(want), "{name}: {err}");
            assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        }
    }
    // A directory.
    let err = err_of(t.load_checkpoint(d));
    assert!(err.contains("directory"), "{err}");
    // A safetensors file of someone else's (no format metadata).
    let mut p = parts(&d.join("good.safetensors"));
    p.meta.clear();
    let err = err_of(t.load_checkpoint(write_parts(&p, &d.join("foreign"))));
    assert!(err.contains("not an mlp-compute checkpoint"), "{err}");
}

#[test]
fn checkpoints_of_other_models_are_refused_and_leave_the_trainer_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = saved_autoencoder(d);
    let mut t = Trainer::new(
        backend(),
        trace_autoencoder(8, &[4]).unwrap(),
        TrainConfig {
            seed: 9,
            ..config(4)
        },
    )
    .unwrap();
    let before = t.params().unwrap();
    let base = parts(&good);
    let w = "param/encoder.0.weight";
    let edit = |name: &str, f: &dyn Fn(&mut Parts)| {
        let mut p = Parts {
            tensors: base.tensors.clone(),
            meta: base.meta.clone(),
        };
        f(&mut p);
        write_parts(&p, &d.join(name))
    };
    // An extra tensor: the model would silently drop it.
    let extra = edit("extra", &|p| {
        let mut e = p.tensors[0].clone();
        e.0 = "param/encoder.9.weight".into();
        p.tensors.push(e);
    });
    let err = err_of(t.load_checkpoint(&extra));
    assert!(
        err.contains("'param/encoder.9.weight'") && err.contains("not part of this model"),
        "{err}"
    );
    // A missing tensor.
    let missing = edit("missing", &|p| p.tensors.retain(|x| x.0 != w));
    let err = err_of(t.load_checkpoint(&missing));
    assert!(err.contains(&format!("no tensor '{w}'")), "{err}");
    // The same bytes read as f16, and an i64 tensor.
    for (name, dtype) in [
        ("f16", safetensors::Dtype::F16),
        ("i64", safetensors::Dtype::I64),
    ] {
        let path = edit(name, &|p| {
            let x = p.tensors.iter_mut().find(|x| x.0 == w).unwrap();
            x.1 = dtype;
            let n: usize = x.2.iter().product();
            x.3 = vec![0u8; n * dtype.bitsize() / 8];
        });
        let err = err_of(t.load_checkpoint(&path));
        assert!(
            err.contains(w) && err.contains(&format!("{dtype:?}")),
            "{err}"
        );
    }
    // Another shape names both.
    let wider = edit("shape", &|p| {
        let x = p.tensors.iter_mut().find(|x| x.0 == w).unwrap();
        x.2 = vec![2, 16];
    });
    let err = err_of(t.load_checkpoint(&wider));
    assert!(err.contains("[2, 16]") && err.contains("[4, 8]"), "{err}");
    assert_eq!(
        t.params().unwrap(),
        before,
        "a refused checkpoint changed weights"
    );
}

#[test]
fn checkpoint_metadata_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = parts(&saved_autoencoder(d));
    let with = |name: &str, key: &str, value: &str| {
        let mut meta = base.meta.clone();
        meta.insert(key.into(), value.into());
        let p = Parts {
            tensors: base.tensors.clone(),
            meta,
        };
        write_parts(&p, &d.join(name))
    };
    let mut t = autoencoder();
    // A step count that is not a number would silently restart Adam's bias correction.
    let err = err_of(t.load_checkpoint(with("step", "optimizer_step", "banana")));
    assert!(
        err.contains("optimizer_step") && err.contains("banana"),
        "{err}"
    );
    let err = err_of(t.load_checkpoint(with("epoch", "epoch", "-3")));
    assert!(err.contains("'epoch'") && err.contains("-3"), "{err}");
    let err = err_of(t.load_checkpoint(with("version", "version", "2")));
    assert!(err.contains("version '2'"), "{err}");
    // Corrupt configurations.
    let err = err_of(Trainer::from_checkpoint(
        backend(),
        with("json", "config", "{not json"),
    ));
    assert!(err.contains("config"), "{err}");
    // A model spec too large to allocate, and an impossible one: errors, not an abort.
    let huge = serde_json::json!({
        "model": {"model": "TraceAutoencoder", "input": 1u64 << 40, "hidden": [4], "activation": "Relu"},
        "train": config(4),
    });
    let err = err_of(Trainer::from_checkpoint(
        backend(),
        with("huge", "config", &huge.to_string()),
    ));
    assert!(err.contains("out of host memory"), "{err}");
    let deep = serde_json::json!({
        "model": ModelSpec::UNet(UNetConfig { depth: 64, ..tiny_unet() }),
        "train": config(4),
    });
    let err = err_of(Trainer::from_checkpoint(
        backend(),
        with("deep", "config", &deep.to_string()),
    ));
    assert!(err.contains("depth 64"), "{err}");
}

#[test]
fn save_checkpoint_replaces_the_file_whole_and_reports_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("model.safetensors");
    let mut t = autoencoder();
    t.save_checkpoint(&path).unwrap();
    let first = std::fs::read(&path).unwrap();
    // A second name for the first file: a save must write a new file and rename it over the
    // old one (a crash mid-write then leaves the old checkpoint), not rewrite it in place.
    let link = d.join("backup.safetensors");
    std::fs::hard_link(&path, &link).unwrap();
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
    t.fit(&Dataset::inputs(&x), None).unwrap();
    t.save_checkpoint(&path).unwrap();
    assert_eq!(std::fs::read(&link).unwrap(), first, "saved in place");
    assert_ne!(std::fs::read(&path).unwrap(), first);
    // The new file loads and predicts the same.
    let mut u = Trainer::from_checkpoint(backend(), &path).unwrap();
    assert_eq!(u.predict(&x).unwrap(), t.predict(&x).unwrap());
    // Bad destinations are errors naming the path, and leave nothing behind.
    let err = err_of(t.save_checkpoint(d.join("no/such/dir/m.safetensors")));
    assert!(
        err.contains("no/such/dir") && err.contains("does not exist"),
        "{err}"
    );
    let err = err_of(t.save_checkpoint(d));
    assert!(err.contains("directory"), "{err}");
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["backup.safetensors", "model.safetensors"]);
}

// ---- Training configuration and data ------------------------------------------------------

#[test]
fn impossible_training_configurations_are_refused() {
    let x = vec![0.25f32; 8 * 8];
    let fit = |c: TrainConfig| -> String {
        match Trainer::new(backend(), trace_autoencoder(8, &[4]).unwrap(), c) {
            Err(e) => e.to_string(),
            Ok(mut t) => err_of(t.fit(&Dataset::inputs(&x), None)),
        }
    };
    let err = fit(TrainConfig {
        epochs: 0,
        ..config(4)
    });
    assert!(err.contains("epochs is 0"), "{err}");
    let err = fit(config(9));
    assert!(
        err.contains("batch_size 9") && err.contains("8 training samples"),
        "{err}"
    );
    let err = fit(TrainConfig {
        validation_split: 0.5,
        ..config(8)
    });
    assert!(err.contains("4 of 8 samples are held out"), "{err}");
    // Optimizer settings that can only give NaN.
    let adam = |beta1, beta2, eps| Optimizer::Adam {
        beta1,
        beta2,
        eps,
        weight_decay: 0.0,
    };
    for (opt, want) in [
        (adam(0.9, 1.0, 1e-8), "beta2"),
        (adam(f32::NAN, 0.999, 1e-8), "beta1"),
        (adam(0.9, 0.999, -1.0), "eps"),
        (Optimizer::sgd(f32::NAN), "momentum"),
        (Optimizer::adamw(f32::INFINITY), "weight_decay"),
    ] {
        let err = fit(TrainConfig {
            optimizer: opt,
            ..config(4)
        });
        assert!(
            err.contains("training config") && err.contains(want),
            "{err}"
        );
    }
    for (sched, want) in [
        (
            LrSchedule::Step {
                every: 0,
                gamma: 0.5,
            },
            "every",
        ),
        (
            LrSchedule::Step {
                every: 1,
                gamma: f32::NAN,
            },
            "gamma",
        ),
        (LrSchedule::Cosine { min_lr: -1.0 }, "min_lr"),
    ] {
        let err = fit(TrainConfig {
            lr_schedule: sched,
            ..config(4)
        });
        assert!(err.contains(want), "{err}");
    }
    let err = fit(TrainConfig {
        min_delta: f32::NAN,
        ..config(4)
    });
    assert!(err.contains("min_delta"), "{err}");
    // The reported class must exist.
    let c = UNetConfig {
        head: Head::Softmax,
        out_channels: 2,
        loss: SegLoss::Dice,
        ..tiny_unet()
    };
    let err = err_of(Trainer::new(
        backend(),
        unet(&c).unwrap(),
        TrainConfig {
            positive_class: 2,
            ..config(2)
        },
    ));
    assert!(
        err.contains("positive_class 2") && err.contains("2 classes"),
        "{err}"
    );
}

#[test]
fn nan_and_infinity_in_data_are_named() {
    // An infinity in sample 5 (the second batch of 4 without shuffling).
    let mut x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
    x[5 * 8 + 2] = f32::INFINITY;
    let mut t = Trainer::new(
        backend(),
        trace_autoencoder(8, &[4]).unwrap(),
        TrainConfig {
            shuffle: false,
            ..config(4)
        },
    )
    .unwrap();
    let err = t.fit(&Dataset::inputs(&x), None).unwrap_err();
    assert!(matches!(err, ComputeError::NonFinite(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("sample 5 of the training inputs holds infinity (value 2 of 8)")
            && msg.contains("epoch 1, step 2 of 2"),
        "{msg}"
    );
    assert_eq!(t.steps_done(), 1);
    // Prediction and evaluation name the sample too.
    let err = err_of(t.predict(&x));
    assert!(err.contains("predict: sample 5"), "{err}");
    let err = err_of(t.evaluate(&Dataset::inputs(&x)));
    assert!(err.contains("evaluate: sample 5"), "{err}");

    // In a U-Net the NaN vanishes in a ReLU, so the loss stays finite: the data check is
    // what stops training on it.
    let c = tiny_unet();
    let xs: Vec<f32> = (0..4 * 64).map(|i| (i as f32 * 0.11).cos()).collect();
    let ys: Vec<f32> = (0..4 * 64).map(|i| f32::from(i % 7 == 0)).collect();
    let mut bad = xs.clone();
    bad[64 + 10] = f32::NAN;
    let mut u = Trainer::new(
        backend(),
        unet(&c).unwrap(),
        TrainConfig {
            shuffle: false,
            ..config(2)
        },
    )
    .unwrap();
    let err = err_of(u.fit(&Dataset::new(&bad, &ys), None));
    assert!(
        err.contains("sample 1 of the training inputs holds NaN") && err.contains("step 1 of 2"),
        "{err}"
    );
    // A NaN in the validation set is found before training starts.
    let err = err_of(u.fit(&Dataset::new(&xs, &ys), Some(&Dataset::new(&bad, &ys))));
    assert!(
        err.contains("sample 1 of the validation inputs holds NaN"),
        "{err}"
    );
    assert_eq!(u.steps_done(), 0);
}

#[test]
fn bce_and_dice_targets_must_be_probabilities() {
    let c = tiny_unet();
    let xs: Vec<f32> = (0..2 * 64).map(|i| (i as f32 * 0.11).cos()).collect();
    // A 0/255 mask.
    let ys: Vec<f32> = (0..2 * 64)
        .map(|i| if i % 5 == 3 { 255.0 } else { 0.0 })
        .collect();
    let mut t = Trainer::new(backend(), unet(&c).unwrap(), config(2)).unwrap();
    let err = err_of(t.fit(&Dataset::new(&xs, &ys), None));
    assert!(
        err.contains("[0, 1]") && err.contains("holds 255") && err.contains("sample 0"),
        "{err}"
    );
    let err = err_of(t.evaluate(&Dataset::new(&xs, &ys)));
    assert!(err.contains("holds 255"), "{err}");
    assert_eq!(t.steps_done(), 0);
    // MSE targets are any real numbers.
    let c = UNetConfig {
        head: Head::Linear,
        loss: SegLoss::Mse,
        ..tiny_unet()
    };
    let mut t = Trainer::new(backend(), unet(&c).unwrap(), config(2)).unwrap();
    t.fit(&Dataset::new(&xs, &ys), None).unwrap();
}

// ---- Models and graphs --------------------------------------------------------------------

#[test]
fn impossible_models_are_errors() {
    for depth in [4usize, 63, 64, 1000] {
        let err = err_of(unet(&UNetConfig {
            depth,
            ..tiny_unet()
        }));
        assert!(
            err.contains(&format!("(depth {depth})")) && err.contains("[1, 8, 8]"),
            "{err}"
        );
    }
    let err = err_of(unet(&UNetConfig {
        height: 12,
        depth: 3,
        ..tiny_unet()
    }));
    assert!(err.contains("divisible by 2^depth = 8"), "{err}");
    let err = err_of(unet(&UNetConfig {
        base_channels: 1 << 62,
        depth: 3,
        ..tiny_unet()
    }));
    assert!(err.contains("overflow"), "{err}");
    let err = err_of(unet(&UNetConfig {
        base_channels: 0,
        ..tiny_unet()
    }));
    assert!(err.contains("base 0"), "{err}");
    let err = err_of(unet(&UNetConfig {
        dropout: f32::NAN,
        ..tiny_unet()
    }));
    assert!(err.contains("dropout"), "{err}");
    let err = err_of(unet(&UNetConfig {
        loss: SegLoss::Bce {
            pos_weight: f32::NAN,
        },
        ..tiny_unet()
    }));
    assert!(err.contains("pos_weight"), "{err}");
    let err = err_of(trace_autoencoder(8, &[4, 0]));
    assert!(err.contains("[4, 0]"), "{err}");
    // Too large for memory: refused before allocating (an abort before).
    let g = trace_autoencoder(1 << 40, &[4]).unwrap();
    let Err(err) = Trainer::new(backend(), g, config(4)) else {
        panic!("a 2^42-value model was allocated")
    };
    assert!(matches!(err, ComputeError::HostOutOfMemory(_)), "{err:?}");
    // Too large to count: the element count would wrap around.
    let mut g = Graph::new();
    let err = err_of(g.input("x", &[1 << 32, 1 << 32]));
    assert!(err.contains("[4294967296, 4294967296]"), "{err}");
    let err = err_of(g.param("w", &[1 << 40, 1 << 30], Init::Zeros));
    assert!(err.contains("more elements than fit"), "{err}");
    let x = g.input("x", &[1 << 20]).unwrap();
    let t = g.target("t", &[1 << 20]).unwrap();
    g.loss("mse", LossKind::Mse, x, t, 1.0).unwrap();
    let err = err_of(g.lower_train(1 << 50, None));
    assert!(err.contains("batch size 1125899906842624"), "{err}");
}

// ---- Backends -----------------------------------------------------------------------------

#[test]
fn dispatch_errors_name_the_shapes() {
    let b = CpuBackend::new();
    let buf = |n: usize| b.alloc(n).unwrap();
    let (x, y, o) = (buf(64), buf(64), buf(64));
    let t = |buf, s: &[usize]| Tensor::new(buf, s.to_vec());
    /// The op, its inputs and outputs, and what the error must name.
    type Case = (Op, Vec<Tensor>, Vec<Tensor>, [&'static str; 2]);
    let cases: Vec<Case> = vec![
        (
            Op::Add,
            vec![t(x, &[3, 4]), t(y, &[4, 3])],
            vec![t(o, &[3, 4])],
            ["[3, 4]", "[4, 3]"],
        ),
        (
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            vec![t(x, &[2, 3]), t(y, &[4, 2])],
            vec![t(o, &[2, 2])],
            ["[2, 3]", "[4, 2]"],
        ),
        (
            Op::Conv2d {
                stride: 1,
                padding: Padding::Same,
            },
            vec![t(x, &[1, 2, 4, 4]), t(y, &[1, 3, 3, 3])],
            vec![t(o, &[1, 1, 4, 4])],
            ["[1, 2, 4, 4]", "[1, 3, 3, 3]"],
        ),
        (
            Op::BatchNormTrain { eps: 1e-5 },
            vec![t(x, &[2, 3, 2, 2]), t(y, &[4]), t(o, &[3])],
            vec![],
            ["[2, 3, 2, 2]", "[4]"],
        ),
        (
            Op::Add,
            vec![t(x, &[2, 3]), t(y, &[2, 3])],
            vec![t(o, &[3, 2])],
            ["[2, 3]", "[3, 2]"],
        ),
        (
            Op::LayerNorm { eps: 1e-5 },
            vec![t(x, &[2, 3, 4]), t(y, &[3]), t(o, &[4])],
            vec![],
            ["[2, 3, 4]", "[3]"],
        ),
        // Element counts that wrap around usize (the buffers would pass a wrapped check).
        (
            Op::MatMul {
                trans_a: false,
                trans_b: false,
            },
            vec![t(x, &[1 << 32, 1 << 32]), t(y, &[1 << 32, 1 << 32])],
            vec![t(o, &[1 << 32, 1 << 32])],
            ["[4294967296, 4294967296]", "more elements than fit"],
        ),
        (
            Op::Upsample2,
            vec![t(x, &[1, 1, usize::MAX, 1])],
            vec![t(o, &[1, 1, 2, 2])],
            ["upsample2", "too large"],
        ),
    ];
    for (op, ins, outs, want) in cases {
        let ir: Vec<&Tensor> = ins.iter().collect();
        let or: Vec<&Tensor> = outs.iter().collect();
        let err = b.dispatch(&op, &ir, &or).unwrap_err();
        let msg = err.to_string();
        assert!(want.iter().all(|w| msg.contains(w)), "{}: {msg}", op.name());
    }
    // The CPU twin refuses a wrapped shape too.
    let data = [0f32; 4];
    let big: &[usize] = &[1 << 32, 1 << 32];
    let mut out = [0f32; 4];
    let err = mlp_compute::cpu::run(&Op::Add, &[(&data, big), (&data, big)], &mut [&mut out]);
    assert!(err.is_err());
}

/// On the GPU backend (lavapipe where there is no GPU; skipped without an adapter), a model
/// beyond what the device can hold is an out-of-memory error, not a crash.
#[test]
fn gpu_out_of_memory_is_an_error() {
    use mlp_compute::gpu::{GpuBackend, GpuOptions};
    let gpu: Arc<dyn Backend> = match GpuBackend::new(GpuOptions::allow_cpu()) {
        Ok(g) => Arc::new(g),
        Err(e) => {
            eprintln!("SKIPPED: no wgpu adapter: {e}");
            return;
        }
    };
    let g = trace_autoencoder(1 << 34, &[4]).unwrap();
    let Err(err) = Trainer::new(gpu.clone(), g, config(4)) else {
        panic!("a 2^36-value model was allocated on the GPU")
    };
    assert!(matches!(err, ComputeError::OutOfMemory(_)), "{err:?}");
}

/// Allocating an impossible CPU buffer directly through the `Backend` API is an error naming
/// the size (it used to abort the process), and a small allocation afterwards still works.
#[test]
fn cpu_buffers_too_big_for_memory_are_errors() {
    let b = CpuBackend::new();
    for len in [usize::MAX / 2, 1usize << 52] {
        let e = err_of(b.alloc(len));
        assert!(e.contains("out of host memory") && e.contains("GiB"), "{e}");
    }
    let ok = b.alloc(16).unwrap();
    assert_eq!(b.download(ok).unwrap(), vec![0.0; 16]);
}
