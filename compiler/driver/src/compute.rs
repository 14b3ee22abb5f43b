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
        /// Timed runs per op (the median is reported).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Shrink every shape by this factor (for slow devices).
        #[arg(long, default_value_t = 1)]
        scale: usize,
        /// Accept a software GPU adapter (lavapipe) for `gpu`/`auto`.
        #[arg(long)]
        allow_cpu_adapter: bool,
    },
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse()
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
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

pub fn bench(cmd: BenchCmd) -> ExitCode {
    match cmd {
        BenchCmd::Kernels {
            device,
            json,
            repeats,
            scale,
            allow_cpu_adapter,
        } => {
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
            let cases = mlp_compute::bench::cases(scale);
            let ms = match mlp_compute::bench::run(backend.as_ref(), reference, &cases, repeats) {
                Ok(ms) => ms,
                Err(e) => return fail(e),
            };
            if json {
                let v = serde_json::json!({ "device": backend.describe(), "kernels": ms });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!("device: {}", backend.describe());
                print!("{}", mlp_compute::bench::table(&ms));
            }
            ExitCode::SUCCESS
        }
    }
}
