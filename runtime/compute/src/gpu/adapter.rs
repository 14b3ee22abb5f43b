//! Adapter discovery and choice: what `mlp devices` lists and which adapter `auto` takes.

use crate::error::{ComputeError, Result};

/// How the GPU backend chooses its adapter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuOptions {
    /// Accept a CPU-type (or virtual / unknown) adapter such as Mesa's lavapipe ("llvmpipe")
    /// when no discrete or integrated GPU is present. Off by default: a software rasteriser is
    /// much slower than the CPU backend, so it is only for tests.
    pub allow_cpu_adapter: bool,
    /// Take a specific adapter: an index into [`adapters`] or a case-insensitive substring of
    /// its name; an explicit choice may be any type of adapter. `None` picks automatically
    /// (see [`auto_pick`]).
    pub adapter: Option<String>,
}

impl GpuOptions {
    /// Options for tests: any adapter, lavapipe included.
    pub fn allow_cpu() -> GpuOptions {
        GpuOptions {
            allow_cpu_adapter: true,
            adapter: None,
        }
    }
}

/// Kind of device behind an adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdapterType {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    Cpu,
    Other,
}

impl AdapterType {
    fn from_wgpu(t: wgpu::DeviceType) -> AdapterType {
        match t {
            wgpu::DeviceType::DiscreteGpu => AdapterType::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu => AdapterType::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu => AdapterType::VirtualGpu,
            wgpu::DeviceType::Cpu => AdapterType::Cpu,
            wgpu::DeviceType::Other => AdapterType::Other,
        }
    }

    /// Whether this is real GPU hardware (what `auto` accepts).
    pub fn is_hardware_gpu(self) -> bool {
        matches!(self, AdapterType::DiscreteGpu | AdapterType::IntegratedGpu)
    }

    fn rank(self) -> u32 {
        match self {
            AdapterType::DiscreteGpu => 0,
            AdapterType::IntegratedGpu => 1,
            AdapterType::VirtualGpu => 2,
            AdapterType::Other => 3,
            AdapterType::Cpu => 4,
        }
    }
}

impl std::fmt::Display for AdapterType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AdapterType::DiscreteGpu => "discrete GPU",
            AdapterType::IntegratedGpu => "integrated GPU",
            AdapterType::VirtualGpu => "virtual GPU",
            AdapterType::Cpu => "CPU",
            AdapterType::Other => "other",
        })
    }
}

/// One adapter, as `mlp devices` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterInfoSummary {
    /// Position in the list (what [`GpuOptions::adapter`] accepts).
    pub index: usize,
    pub name: String,
    /// Graphics API: "vulkan", "metal", "dx12", "gl".
    pub backend: String,
    pub device_type: AdapterType,
    pub driver: String,
    pub driver_info: String,
    /// Largest single buffer, in bytes.
    pub max_buffer_size: u64,
    /// Largest storage-buffer binding, in bytes (the largest tensor a kernel can address).
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_storage_buffers_per_shader_stage: u32,
}

impl std::fmt::Display for AdapterInfoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{} {} ({}, {}; driver {}{}) max buffer {} MiB, max binding {} MiB",
            self.index,
            self.name,
            self.device_type,
            self.backend,
            if self.driver.is_empty() {
                "?"
            } else {
                &self.driver
            },
            if self.driver_info.is_empty() {
                String::new()
            } else {
                format!(" {}", self.driver_info)
            },
            self.max_buffer_size >> 20,
            self.max_storage_buffer_binding_size >> 20,
        )
    }
}

fn backend_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Vulkan => "vulkan",
        wgpu::Backend::Metal => "metal",
        wgpu::Backend::Dx12 => "dx12",
        wgpu::Backend::Gl => "gl",
        wgpu::Backend::BrowserWebGpu => "webgpu",
        wgpu::Backend::Noop => "noop",
    }
}

fn backend_rank(b: &str) -> u32 {
    match b {
        "vulkan" | "metal" | "dx12" => 0,
        _ => 1,
    }
}

/// The wgpu instance the backend uses: the first-tier native APIs (Vulkan, Metal, DX12);
/// `WGPU_BACKEND` overrides the set.
pub(crate) fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::from_env()
        .unwrap_or(wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12);
    // No validation layers or debug labels unless asked for through the environment.
    desc.flags = wgpu::InstanceFlags::empty().with_env();
    wgpu::Instance::new(desc)
}

pub(crate) fn summarize(index: usize, adapter: &wgpu::Adapter) -> AdapterInfoSummary {
    let info = adapter.get_info();
    let l = adapter.limits();
    AdapterInfoSummary {
        index,
        name: info.name,
        backend: backend_name(info.backend).to_string(),
        device_type: AdapterType::from_wgpu(info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        max_buffer_size: l.max_buffer_size,
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
        max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
        max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
    }
}

pub(crate) fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// Every adapter wgpu finds on this machine (for `mlp devices`).
pub fn adapters() -> Vec<AdapterInfoSummary> {
    let instance = instance();
    enumerate(&instance)
        .iter()
        .enumerate()
        .map(|(i, a)| summarize(i, a))
        .collect()
}

/// The automatic choice among `adapters`: the best discrete GPU, else the best integrated GPU,
/// else (only with `allow_cpu_adapter`) a virtual, unknown or CPU adapter such as lavapipe.
/// `None` means "no suitable GPU": the caller falls back to the CPU backend with a notice.
/// Among equals, Vulkan/Metal/DX12 beat GL and the earlier adapter wins.
pub fn auto_pick(adapters: &[AdapterInfoSummary], allow_cpu_adapter: bool) -> Option<usize> {
    adapters
        .iter()
        .enumerate()
        .filter(|(_, a)| allow_cpu_adapter || a.device_type.is_hardware_gpu())
        .min_by_key(|(i, a)| (a.device_type.rank(), backend_rank(&a.backend), *i))
        .map(|(i, _)| i)
}

/// Resolves the options to one adapter of `all` (summaries at the same positions).
pub(crate) fn choose(summaries: &[AdapterInfoSummary], options: &GpuOptions) -> Result<usize> {
    let listing = || {
        if summaries.is_empty() {
            "wgpu found no adapters (is a Vulkan driver installed?)".to_string()
        } else {
            let names: Vec<String> = summaries.iter().map(|s| s.to_string()).collect();
            format!("adapters found: {}", names.join("; "))
        }
    };
    if let Some(want) = &options.adapter {
        if let Ok(i) = want.trim_start_matches('#').parse::<usize>() {
            return if i < summaries.len() {
                Ok(i)
            } else {
                Err(ComputeError::Gpu(format!("no adapter #{i}; {}", listing())))
            };
        }
        let lower = want.to_lowercase();
        let mut matching: Vec<AdapterInfoSummary> = summaries
            .iter()
            .filter(|s| s.name.to_lowercase().contains(&lower))
            .cloned()
            .collect();
        // Re-index so that `auto_pick` ranks the matches; map back to the full list.
        let original: Vec<usize> = matching.iter().map(|s| s.index).collect();
        for (k, s) in matching.iter_mut().enumerate() {
            s.index = k;
        }
        return auto_pick(&matching, true)
            .map(|k| original[k])
            .ok_or_else(|| {
                ComputeError::Gpu(format!("no adapter named like {want:?}; {}", listing()))
            });
    }
    auto_pick(summaries, options.allow_cpu_adapter).ok_or_else(|| {
        if options.allow_cpu_adapter {
            return ComputeError::Gpu(format!("no GPU adapter found; {}", listing()));
        }
        let hint = if summaries.is_empty() {
            ""
        } else {
            " (software/CPU adapters are only used when explicitly allowed)"
        };
        ComputeError::Gpu(format!(
            "no discrete or integrated GPU adapter found{hint}; {}",
            listing()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(index: usize, t: AdapterType, backend: &str) -> AdapterInfoSummary {
        AdapterInfoSummary {
            index,
            name: format!("a{index}"),
            backend: backend.into(),
            device_type: t,
            driver: String::new(),
            driver_info: String::new(),
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 1 << 30,
            max_compute_workgroups_per_dimension: 65535,
            max_compute_invocations_per_workgroup: 256,
            max_compute_workgroup_storage_size: 16384,
            max_storage_buffers_per_shader_stage: 8,
        }
    }

    #[test]
    fn auto_prefers_discrete_then_integrated() {
        let list = vec![
            s(0, AdapterType::Cpu, "vulkan"),
            s(1, AdapterType::IntegratedGpu, "vulkan"),
            s(2, AdapterType::DiscreteGpu, "gl"),
            s(3, AdapterType::DiscreteGpu, "vulkan"),
        ];
        assert_eq!(auto_pick(&list, false), Some(3));
        assert_eq!(auto_pick(&list[..2], false), Some(1));
        assert_eq!(auto_pick(&list[..1], false), None);
        assert_eq!(auto_pick(&list[..1], true), Some(0));
        assert_eq!(auto_pick(&[], true), None);
    }

    #[test]
    fn explicit_choice() {
        let list = vec![
            s(0, AdapterType::Cpu, "vulkan"),
            s(1, AdapterType::IntegratedGpu, "vulkan"),
        ];
        let by = |a: &str| GpuOptions {
            allow_cpu_adapter: false,
            adapter: Some(a.into()),
        };
        assert_eq!(choose(&list, &by("0")).unwrap(), 0);
        assert_eq!(choose(&list, &by("#1")).unwrap(), 1);
        assert_eq!(choose(&list, &by("A0")).unwrap(), 0);
        assert!(choose(&list, &by("7")).is_err());
        assert!(choose(&list, &by("nvidia")).is_err());
        let err = choose(&list[..1], &GpuOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("no discrete or integrated GPU"),
            "{err}"
        );
    }
}
