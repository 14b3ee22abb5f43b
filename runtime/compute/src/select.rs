//! Device choice: `auto` takes a discrete or integrated GPU when present, else the CPU with a
//! one-line notice; `gpu` without a usable adapter is an error; `cpu` is the ndarray backend.

use crate::backend::Backend;
use crate::cpu::CpuBackend;
use crate::error::{ComputeError, Result};
use crate::gpu::{GpuBackend, GpuOptions};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Gpu,
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "gpu" => Ok(DeviceChoice::Gpu),
            "cpu" => Ok(DeviceChoice::Cpu),
            _ => Err(format!("unknown device `{s}` (expected auto, gpu or cpu)")),
        }
    }
}

/// A backend for the choice, and the notice to print when `auto` fell back to the CPU.
/// `allow_cpu_adapter` lets `gpu` (and `auto`) take a software adapter such as lavapipe.
pub fn select(
    choice: DeviceChoice,
    allow_cpu_adapter: bool,
) -> Result<(Box<dyn Backend>, Option<String>)> {
    let opts = GpuOptions {
        allow_cpu_adapter,
        adapter: None,
    };
    match choice {
        DeviceChoice::Cpu => Ok((Box::new(CpuBackend::new()), None)),
        DeviceChoice::Gpu => GpuBackend::new(opts)
            .map(|g| (Box::new(g) as Box<dyn Backend>, None))
            .map_err(|e| match e {
                ComputeError::Gpu(m) => ComputeError::Gpu(format!("--device gpu: {m}")),
                other => other,
            }),
        DeviceChoice::Auto => match GpuBackend::new(opts) {
            Ok(g) => Ok((Box::new(g), None)),
            Err(e) => Ok((
                Box::new(CpuBackend::new()),
                Some(format!("notice: no usable GPU ({e}); running on the CPU")),
            )),
        },
    }
}
