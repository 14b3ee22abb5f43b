//! The harness the op-level test suites share (`conformance.rs`, `torch_reference.rs`): the
//! CPU backend, the GPU backend (any wgpu adapter, lavapipe included; a skip notice without
//! one, a failure under `CI=true`, where CI installs lavapipe), and one op run on a backend.

#![allow(dead_code)] // each suite uses its own part

use std::sync::OnceLock;

use mlp_compute::cpu::CpuBackend;
use mlp_compute::gpu::{GpuBackend, GpuOptions};
use mlp_compute::op::{numel, Op};
use mlp_compute::{Backend, Tensor};

/// The suite's name in notices (the test binary's crate name).
const SUITE: &str = env!("CARGO_CRATE_NAME");

/// The GPU backend, made once per test binary; `None` (with a printed skip notice) when no
/// adapter is found, a panic then under `CI=true`.
pub fn gpu() -> Option<&'static GpuBackend> {
    static GPU: OnceLock<Option<GpuBackend>> = OnceLock::new();
    GPU.get_or_init(|| match GpuBackend::new(GpuOptions::allow_cpu()) {
        Ok(g) => {
            eprintln!("{SUITE}: GPU backend on {}", g.describe());
            Some(g)
        }
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "{SUITE}: no GPU adapter under CI=true (CI installs mesa-vulkan-drivers for \
                     lavapipe): {e}"
                );
            }
            eprintln!(
                "SKIPPED: the GPU half of {SUITE} needs a wgpu adapter (a GPU, or Mesa's \
                 lavapipe from mesa-vulkan-drivers): {e}"
            );
            None
        }
    })
    .as_ref()
}

/// The CPU backend, made once per test binary.
pub fn cpu() -> &'static CpuBackend {
    static CPU: OnceLock<CpuBackend> = OnceLock::new();
    CPU.get_or_init(CpuBackend::new)
}

/// An input's data and shape.
pub type Input = (Vec<f32>, Vec<usize>);

/// Runs `op` on `be`; in-place ops start from `init` outputs. Returns the outputs.
pub fn run_on(
    be: &dyn Backend,
    op: &Op,
    inputs: &[Input],
    init: Option<&[Vec<f32>]>,
) -> Vec<Vec<f32>> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|(_, s)| s.as_slice()).collect();
    let out_shapes = op.output_shapes(&shapes).expect("valid shapes");
    let ins: Vec<Tensor> = inputs
        .iter()
        .map(|(d, s)| {
            assert_eq!(d.len(), numel(s), "test data for {op:?}");
            let b = be.alloc(d.len()).unwrap();
            be.upload(b, d).unwrap();
            Tensor::new(b, s.clone())
        })
        .collect();
    let outs: Vec<Tensor> = out_shapes
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let b = be.alloc(numel(s)).unwrap();
            if let Some(init) = init {
                be.upload(b, &init[k]).unwrap();
            }
            Tensor::new(b, s.clone())
        })
        .collect();
    let in_refs: Vec<&Tensor> = ins.iter().collect();
    let out_refs: Vec<&Tensor> = outs.iter().collect();
    be.dispatch(op, &in_refs, &out_refs)
        .unwrap_or_else(|e| panic!("{op:?} on {}: {e}", be.describe()));
    let res = outs.iter().map(|t| be.download(t.buf).unwrap()).collect();
    for t in ins.iter().chain(&outs) {
        be.free(t.buf);
    }
    res
}
