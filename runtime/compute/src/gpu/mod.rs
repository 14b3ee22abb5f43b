//! The GPU backend: wgpu compute, one WGSL kernel file per op (`kernels/*.wgsl`).
//!
//! - [`GpuBackend::new`] opens an adapter chosen by [`GpuOptions`]: a discrete GPU, else an
//!   integrated one; software adapters (lavapipe/llvmpipe, WARP) only when
//!   [`GpuOptions::allow_cpu_adapter`] is set (tests). [`adapters`] lists what wgpu finds (for
//!   `mlp devices`) and [`auto_pick`] is the automatic rule, `None` meaning "use the CPU".
//! - Kernels implement exactly the semantics of [`crate::op`] (the same erf, pcg_hash/dropout
//!   rule, padding and tie-breaking as the CPU backend); `tests/conformance.rs` checks every op
//!   against the CPU backend on random shapes.
//! - Dispatches are batched into one command encoder and submitted at `sync`/`download` (see
//!   [`GpuBackend`] for recording, parameter passing, buffer pooling and error handling).
//! - Kernel variants that give identical results (GEMM tiles, convolution tile heights) are
//!   autotuned per shape class on GPU hardware (`autotune.rs`).
//! - Opt-in per-kernel profiling with timestamp queries ([`GpuBackend::enable_profiling`],
//!   [`GpuBackend::profile`]; `profile.rs`).

mod adapter;
mod autotune;
mod device;
mod kernels;
mod ops;
mod profile;

pub use adapter::{adapters, auto_pick, AdapterInfoSummary, AdapterType, GpuOptions};
pub use autotune::TunedKernel;
pub use device::GpuBackend;
pub use profile::{KernelTime, ProfileMode};

/// Every WGSL kernel compiled into the backend: `(file name, source)`.
pub fn kernel_sources() -> &'static [(&'static str, &'static str)] {
    kernels::KERNELS
}

/// The workgroup memory a kernel needs from the device, in bytes (kernels past WebGPU's default
/// 16384 are listed with their exact figure and run only where the device offers as much).
pub fn kernel_workgroup_bytes(name: &str) -> u32 {
    kernels::workgroup_bytes(name)
}
