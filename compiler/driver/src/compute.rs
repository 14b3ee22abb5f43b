//! `mlp devices` and `mlp bench kernels` (the work is in `mlp-compute`).

use clap::Subcommand;
use mlp_compute::select::{select, DeviceChoice};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Every op, forward and backward: time, GFLOP/s or GB/s, error against the CPU twin.
    Kernels {
        /// Device to measure: auto, gpu or cpu.
        #[arg(long, default_value = "auto", value_parser = parse_device)]
        device: DeviceChoice,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Timed runs per op (the median is reported), after 150 ms of untimed back-to-back
        /// runs (GPU clocks ramp up; pipelines compile and kernels autotune).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Shrink every shape by this factor (for slow devices).
        #[arg(long, default_value_t = 1)]
        scale: usize,
        /// Accept a software GPU adapter (lavapipe) for `gpu`/`auto`.
        #[arg(long)]
        allow_cpu_adapter: bool,
        /// Also measure square matmuls of these sizes (e.g. `2048,4096,8192`).
        #[arg(long, value_delimiter = ',')]
        square: Vec<usize>,
        /// Measure only these ops (by name, e.g. `matmul,conv2d`).
        #[arg(long, value_delimiter = ',')]
        ops: Vec<String>,
        /// Also print the GPU time per kernel over the whole run (GPU timestamp queries;
        /// `MLP_GPU_PROFILE=1` does the same).
        #[arg(long)]
        profile: bool,
    },
    /// Train the fault-segmentation U-Net on a prepared dataset: per-epoch loss and IoU, time
    /// per step (`runtime/compute/bench/unet_torch.py` is the same model in PyTorch).
    Unet(UnetArgs),
}

#[derive(clap::Args)]
pub struct UnetArgs {
    /// A folder with `train/` and `val/` subfolders of `NAME.cube.npy` (float32 [il, xl,
    /// samples]) and `NAME.labels.npy` (uint8 or bool 0/1 fault masks, same shape); each
    /// inline is one image.
    /// `runtime/compute/bench/make_unet_data.sh` makes one.
    #[arg(long)]
    pub data: std::path::PathBuf,
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f32,
    #[arg(long, default_value_t = 3)]
    pub depth: usize,
    #[arg(long, default_value_t = 8)]
    pub base_channels: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of per-epoch lines.
    #[arg(long)]
    pub json: bool,
    /// Accept a software GPU adapter (lavapipe).
    #[arg(long)]
    pub allow_cpu_adapter: bool,
    /// Also print where the GPU time goes: time per kernel over all epochs (training and
    /// validation), from GPU timestamp queries (`MLP_GPU_PROFILE=1` does the same).
    #[arg(long)]
    pub profile: bool,
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse()
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

/// Turns on per-kernel GPU profiling for `--profile` (or `MLP_GPU_PROFILE=1`, which the
/// backend turned on already). `Ok(false)`: not asked for. `Err`: asked for but impossible
/// (the CPU backend, an adapter without timestamp queries), said on stderr; the run goes on.
fn start_profile(backend: &dyn mlp_compute::Backend, asked: bool) -> Result<bool, String> {
    let gpu = backend.as_gpu();
    if !asked && gpu.is_none_or(|g| g.profiling().is_none()) {
        return Ok(false);
    }
    let res = match gpu {
        None => Err(format!(
            "only GPU kernels can be timed, and {} is not a GPU",
            backend.describe()
        )),
        Some(g) => g
            .enable_profiling()
            .map(|_| true)
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = &res {
        eprintln!("warning: --profile: {e}");
    }
    res
}

/// The profile of a run for output: the text to print and the JSON value (`{"error": ...}`
/// when there is none). `scope` says what was timed; `wall` is the run's wall time in
/// seconds, for the GPU's busy share.
fn finish_profile(
    backend: &dyn mlp_compute::Backend,
    started: Result<bool, String>,
    scope: &str,
    wall: Option<f64>,
) -> Option<(String, serde_json::Value)> {
    let gpu = match started {
        Ok(false) => return None,
        Err(e) => return Some((String::new(), serde_json::json!({ "error": e }))),
        Ok(true) => backend.as_gpu()?,
    };
    let p = match gpu.profile() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("warning: --profile: {e}");
            return Some((String::new(), serde_json::json!({ "error": e.to_string() })));
        }
    };
    let mode = gpu.profiling().map(|m| m.to_string()).unwrap_or_default();
    let ms: f64 = p.iter().map(|k| k.total_ns as f64 / 1e6).sum();
    let calls: u64 = p.iter().map(|k| k.calls).sum();
    let dropped = gpu.profile_dropped();
    let busy = wall.filter(|w| *w > 0.0).map(|w| 100.0 * ms / 1e3 / w);
    let mut text =
        format!("GPU time per kernel over {scope} [{mode}]: {ms:.3} ms in {calls} dispatches");
    if let (Some(w), Some(b)) = (wall, busy) {
        text.push_str(&format!(", {b:.1}% of {w:.3} s wall time"));
    }
    if dropped > 0 {
        text.push_str(&format!(" ({dropped} dispatches lost their timestamps)"));
    }
    text.push('\n');
    text.push_str(&mlp_compute::bench::profile_table(&p));
    let v = serde_json::json!({
        "scope": scope,
        "mode": mode,
        "gpu_ms": ms,
        "dispatches": calls,
        "wall_seconds": wall,
        "gpu_busy_percent": busy,
        "dropped": dropped,
        "kernels": mlp_compute::bench::profile_rows(&p),
    });
    Some((text, v))
}

/// Autotuning's choices on a GPU backend (`None` on the CPU): the text table (empty when it
/// is off or tuned nothing) and the JSON value.
fn autotune_report(backend: &dyn mlp_compute::Backend) -> Option<(String, serde_json::Value)> {
    let gpu = backend.as_gpu()?;
    let on = gpu.autotuning();
    let tuned = gpu.autotuned();
    let text = if on && !tuned.is_empty() {
        format!(
            "GPU kernel autotuning (MLP_GPU_AUTOTUNE=off turns it off):\n{}",
            mlp_compute::bench::autotune_table(&tuned)
        )
    } else {
        String::new()
    };
    let v = serde_json::json!({ "enabled": on, "choices": tuned });
    Some((text, v))
}

pub fn devices(json: bool) -> ExitCode {
    let all = mlp_compute::gpu::adapters();
    let pick = mlp_compute::gpu::auto_pick(&all, false);
    if json {
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|a| {
                serde_json::json!({
                    "index": a.index,
                    "name": a.name,
                    "backend": a.backend,
                    "type": a.device_type.to_string(),
                    "driver": a.driver,
                    "driver_info": a.driver_info,
                    "limits": {
                        "max_buffer_size": a.max_buffer_size,
                        "max_storage_buffer_binding_size": a.max_storage_buffer_binding_size,
                        "max_compute_workgroups_per_dimension": a.max_compute_workgroups_per_dimension,
                        "max_compute_invocations_per_workgroup": a.max_compute_invocations_per_workgroup,
                        "max_compute_workgroup_storage_size": a.max_compute_workgroup_storage_size,
                        "max_storage_buffers_per_shader_stage": a.max_storage_buffers_per_shader_stage,
                    },
                })
            })
            .collect();
        let v = serde_json::json!({
            "adapters": list,
            "auto": match pick { Some(i) => serde_json::json!({"device": "gpu", "adapter": i}), None => serde_json::json!({"device": "cpu"}) },
            "cpu_threads": rayon::current_num_threads(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        if all.is_empty() {
            println!(
                "no GPU adapters (wgpu found none; is a Vulkan, Metal or DX12 driver installed?)"
            );
        }
        for a in &all {
            println!("{a}");
        }
        match pick {
            Some(i) => println!("auto: GPU adapter #{i}"),
            None => println!(
                "auto: the CPU ({} threads); no discrete or integrated GPU",
                rayon::current_num_threads()
            ),
        }
    }
    ExitCode::SUCCESS
}

/// Images, masks, their count and the image size.
type Sections = (Vec<f32>, Vec<f32>, usize, [usize; 2]);

/// Loads `dir/*.cube.npy` with their labels as (images, masks), each inline an image.
fn load_sections(dir: &std::path::Path) -> Result<Sections, String> {
    let mut cubes: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".cube.npy"))
        .collect();
    cubes.sort();
    if cubes.is_empty() {
        return Err(format!("{} holds no *.cube.npy files", dir.display()));
    }
    let (mut xs, mut ys, mut n, mut hw) = (Vec::new(), Vec::new(), 0, None);
    for c in cubes {
        let l = std::path::PathBuf::from(c.to_string_lossy().replace(".cube.npy", ".labels.npy"));
        let a = mlp_segy::npy::read_npy(&c).map_err(|e| format!("{}: {e}", c.display()))?;
        let b = mlp_segy::npy::read_npy(&l).map_err(|e| format!("{}: {e}", l.display()))?;
        if a.shape.len() != 3 || a.shape != b.shape {
            return Err(format!(
                "{} {:?} and its labels {:?} must be the same [il, xl, samples] shape",
                c.display(),
                a.shape,
                b.shape
            ));
        }
        let this = [a.shape[1], a.shape[2]];
        if *hw.get_or_insert(this) != this {
            return Err(format!(
                "{}: sections of {this:?}, others are {hw:?}",
                c.display()
            ));
        }
        let at = |i: usize| {
            let (s, x) = (a.shape[2], a.shape[1] * a.shape[2]);
            format!("[{}, {}, {}]", i / x, i % x / s, i % s)
        };
        let cube = a.to_f32().ok_or_else(|| {
            format!(
                "{}: the amplitudes must be float32, the file holds {}",
                c.display(),
                a.dtype.name()
            )
        })?;
        if let Some(i) = cube.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "{}: amplitude {} at {} (il, xl, sample); the data must be finite",
                c.display(),
                cube[i],
                at(i)
            ));
        }
        let lab = b.to_u8().ok_or_else(|| {
            format!(
                "{}: the fault labels must be uint8 (or bool) 0/1 masks, the file holds {}",
                l.display(),
                b.dtype.name()
            )
        })?;
        if let Some(i) = lab.iter().position(|&v| v > 1) {
            return Err(format!(
                "{}: label {} at {} (il, xl, sample); fault labels must be 0 or 1",
                l.display(),
                lab[i],
                at(i)
            ));
        }
        xs.extend(cube);
        ys.extend(lab.iter().map(|&v| f32::from(v)));
        n += a.shape[0];
    }
    let hw = hw.expect("at least one cube");
    if n == 0 {
        return Err(format!(
            "{} holds no sections: its cubes have 0 inlines",
            dir.display()
        ));
    }
    if hw.contains(&0) {
        return Err(format!("{}: sections of {hw:?} are empty", dir.display()));
    }
    Ok((xs, ys, n, hw))
}

fn unet(a: UnetArgs) -> ExitCode {
    use mlp_compute::model::{unet, Head, SegLoss, UNetConfig};
    use mlp_compute::train::{Dataset, LrSchedule, Optimizer, TrainConfig, Trainer};
    if a.epochs == 0 {
        return fail("--epochs must be at least 1");
    }
    if !(a.lr.is_finite() && a.lr > 0.0) {
        return fail("--lr must be a positive number");
    }
    let (train, val) = match (
        load_sections(&a.data.join("train")),
        load_sections(&a.data.join("val")),
    ) {
        (Ok(t), Ok(v)) => (t, v),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    if train.3 != val.3 {
        return fail(format_args!(
            "train sections are {:?}, validation {:?}",
            train.3, val.3
        ));
    }
    if a.batch == 0 {
        return fail("--batch must be at least 1");
    }
    if a.batch > train.2 {
        return fail(format_args!(
            "--batch {} is larger than the training set: {} holds {} images; use --batch {} or \
             less, or more training data",
            a.batch,
            a.data.join("train").display(),
            train.2,
            train.2
        ));
    }
    let [h, w] = train.3;
    let (backend, notice) = match select(a.device, a.allow_cpu_adapter) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    if let Some(n) = notice {
        eprintln!("{n}");
    }
    let describe = backend.describe();
    let cfg = UNetConfig {
        depth: a.depth,
        base_channels: a.base_channels,
        batch_norm: true,
        head: Head::Sigmoid,
        height: h,
        width: w,
        loss: SegLoss::BceDice {
            pos_weight: 3.0,
            dice_weight: 2.0,
        },
        ..UNetConfig::default()
    };
    let graph = match unet(&cfg) {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    let tc = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch,
        lr: a.lr,
        lr_schedule: LrSchedule::Cosine { min_lr: 1e-5 },
        optimizer: Optimizer::adam(),
        seed: a.seed,
        verbose: !a.json,
        ..TrainConfig::default()
    };
    let backend: std::sync::Arc<dyn mlp_compute::Backend> = std::sync::Arc::from(backend);
    let mut trainer = match Trainer::new(backend, graph, tc) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let profiling = start_profile(trainer.backend().as_ref(), a.profile);
    let t0 = std::time::Instant::now();
    let report = match trainer.fit(
        &Dataset::new(&train.0, &train.1),
        Some(&Dataset::new(&val.0, &val.1)),
    ) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let wall = t0.elapsed().as_secs_f64();
    let profile = finish_profile(
        trainer.backend().as_ref(),
        profiling,
        "all epochs, training and validation",
        Some(wall),
    );
    let steps = train.2 / a.batch.max(1);
    let epochs: Vec<serde_json::Value> = report
        .epochs
        .iter()
        .map(|e| {
            serde_json::json!({
                "epoch": e.epoch,
                "train_loss": e.train_loss,
                "val_loss": e.val_loss,
                "iou": e.metrics.iou,
                "pixel_accuracy": e.metrics.pixel_accuracy,
                "seconds": e.seconds,
                "seconds_per_step": e.seconds / steps.max(1) as f64,
            })
        })
        .collect();
    let last = report.epochs.last();
    let mut v = serde_json::json!({
        "framework": "mlp",
        "device": describe,
        "train_images": train.2,
        "val_images": val.2,
        "image": [h, w],
        "depth": a.depth,
        "base_channels": a.base_channels,
        "batch": a.batch,
        "final_train_loss": last.map(|e| e.train_loss),
        "final_val_iou": last.and_then(|e| e.metrics.iou),
        "epochs": epochs,
    });
    if let Some((_, p)) = &profile {
        v["profile"] = p.clone();
    }
    let tuned = autotune_report(trainer.backend().as_ref());
    if let Some((_, t)) = &tuned {
        v["autotune"] = t.clone();
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        if let Some(e) = last {
            let iou = e
                .metrics
                .iou
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "-".into());
            println!(
                "final: train loss {:.5}, val IoU {iou} on {describe}",
                e.train_loss
            );
        }
        if let Some((text, _)) = &profile {
            print!("{text}");
            if let Some((t, _)) = &tuned {
                print!("{t}");
            }
        }
    }
    ExitCode::SUCCESS
}

pub fn bench(cmd: BenchCmd) -> ExitCode {
    match cmd {
        BenchCmd::Unet(a) => unet(a),
        BenchCmd::Kernels {
            device,
            json,
            repeats,
            scale,
            allow_cpu_adapter,
            square,
            ops,
            profile,
        } => {
            if scale == 0 {
                return fail("--scale must be at least 1 (it divides every shape)");
            }
            if repeats == 0 {
                return fail("--repeats must be at least 1");
            }
            if square.contains(&0) {
                return fail("--square: sizes must be at least 1");
            }
            let (backend, notice) = match select(device, allow_cpu_adapter) {
                Ok(b) => b,
                Err(e) => return fail(e),
            };
            if let Some(n) = notice {
                eprintln!("{n}");
            }
            let cpu = mlp_compute::cpu::CpuBackend::new();
            let is_cpu = backend.kind() == mlp_compute::DeviceKind::Cpu;
            let reference: Option<&dyn mlp_compute::Backend> =
                if is_cpu { None } else { Some(&cpu) };
            let mut cases = mlp_compute::bench::cases(scale);
            cases.extend(mlp_compute::bench::square_matmuls(&square));
            if !ops.is_empty() {
                let known: std::collections::BTreeSet<&str> =
                    cases.iter().map(|c| c.op.name()).collect();
                if let Some(bad) = ops.iter().find(|o| !known.contains(o.as_str())) {
                    let list: Vec<&str> = known.into_iter().collect();
                    return fail(format!(
                        "--ops: no op named `{bad}` (ops: {})",
                        list.join(", ")
                    ));
                }
                cases.retain(|c| ops.iter().any(|o| o == c.op.name()));
            }
            let profiling = start_profile(backend.as_ref(), profile);
            let ms = match mlp_compute::bench::run(backend.as_ref(), reference, &cases, repeats) {
                Ok(ms) => ms,
                Err(e) => return fail(e),
            };
            // No busy share: the run's wall time includes the CPU reference.
            let profile = finish_profile(backend.as_ref(), profiling, "every case", None);
            let tuned = autotune_report(backend.as_ref());
            if json {
                let mut v = serde_json::json!({ "device": backend.describe(), "kernels": ms });
                if let Some((_, p)) = profile {
                    v["profile"] = p;
                }
                if let Some((_, t)) = tuned {
                    v["autotune"] = t;
                }
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!("device: {}", backend.describe());
                print!("{}", mlp_compute::bench::table(&ms));
                if let Some((text, _)) = profile {
                    print!("\n{text}");
                }
                if let Some((t, _)) = tuned.filter(|(t, _)| !t.is_empty()) {
                    print!("\n{t}");
                }
            }
            ExitCode::SUCCESS
        }
    }
}
