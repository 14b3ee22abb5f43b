//! The GPU backend proper: device creation, buffers, batched command recording, submission and
//! read-back. The per-op kernel sequences live in [`super::ops`].
//!
//! Recording and submission. `dispatch` records into a pending command encoder, inside one
//! long-lived compute pass; the batch is submitted at `sync` or `download`, or when the
//! parameter arena is full (every [`PARAM_SLOTS`] dispatches). wgpu orders the dispatches of a
//! pass (each is its own synchronisation scope), so scratch buffers can be reused by the next
//! op at once. An upload goes straight to the queue when nothing is pending, and otherwise is a
//! copy recorded in the batch, so it lands after the dispatches recorded before it.
//!
//! Kernel parameters. Each dispatch gets a 256-byte slot of one uniform buffer (the arena), bound
//! at the slot's offset. The slots' bytes are collected on the host while recording and written
//! with one `queue.write_buffer` just before the batch is submitted; WebGPU orders that write
//! after earlier submissions and before this one, so a batch never sees another batch's
//! parameters and no buffer is created per dispatch.
//!
//! Buffers. Tensors are storage buffers of f32 (zero-initialised by wgpu). Freed buffers are
//! kept in a pool keyed by byte size (capped) and cleared on reuse, in order with pending work;
//! scratch buffers for multi-pass kernels come from a separate pool of power-of-two sizes.
//! Downloads copy into a reusable staging buffer, map it and wait.
//!
//! Errors. Buffer creation, shader and pipeline creation and submission run inside wgpu error
//! scopes, and an uncaptured-error handler records (rather than panics on) anything else for the
//! next `sync`/`download`, so validation errors come back as [`ComputeError::Gpu`] and
//! allocation failures as [`ComputeError::OutOfMemory`]. Sizes are checked against the device
//! limits before anything is created (a tensor one binding cannot address is an
//! out-of-memory error up front).
//!
//! Profiling (opt-in, [`GpuBackend::enable_profiling`] or `MLP_GPU_PROFILE=1`). The device is
//! opened with timestamp queries when the adapter offers them (this alone changes nothing);
//! while profiling is on, every dispatch gets timestamps before and after it, and the per-kernel
//! totals are read back at `sync`/`download` (see [`super::profile`]). While it is off, recording
//! is exactly as described above.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, MutexGuard};

use wgpu::util::DeviceExt;

use super::adapter::{self, AdapterInfoSummary, AdapterType, GpuOptions};
use super::autotune::TunedKernel;
use super::kernels;
use super::profile::{ProfileMode, Profiler};
use crate::backend::{check_dispatch, Backend, BufId, DeviceKind, Tensor};
use crate::error::{ComputeError, Result};
use crate::op::Op;

/// Bytes per parameter slot (the largest `min_uniform_buffer_offset_alignment` allowed).
pub(crate) const SLOT_BYTES: usize = 256;
/// Parameter slots per batch: a batch is submitted after this many dispatches.
pub(crate) const PARAM_SLOTS: usize = 1024;
/// Freed buffers kept for reuse, in bytes.
const POOL_CAP_BYTES: u64 = 1 << 30;
/// Freed buffers kept per size.
const POOL_PER_SIZE: usize = 16;
/// Largest staging buffer kept between downloads.
const STAGING_KEEP_BYTES: u64 = 256 << 20;

/// A compiled kernel entry point.
#[derive(Clone)]
pub(crate) struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

struct Entry {
    buffer: wgpu::Buffer,
    len: usize,
}

/// Everything behind the backend's mutex.
pub(crate) struct State {
    bufs: HashMap<u32, Entry>,
    next_id: u32,
    /// Freed storage buffers by byte size.
    pool: HashMap<u64, Vec<wgpu::Buffer>>,
    pooled_bytes: u64,
    /// Free scratch buffers (power-of-two sizes).
    pub(super) temps: Vec<wgpu::Buffer>,
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<(&'static str, &'static str), Pipeline>,
    /// This batch's parameter slots.
    params: Vec<u8>,
    params_buf: wgpu::Buffer,
    /// The pass is dropped (ended) before the encoder is used for copies or finished.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    staging: Option<wgpu::Buffer>,
    /// Dispatches recorded since the backend was created (for tests and statistics).
    pub(super) dispatches: u64,
    pub(super) submits: u64,
    /// Timestamps per dispatch, while profiling is on.
    pub(super) profiler: Option<Box<Profiler>>,
    /// Read-only lookup tables of kernels (the convolutions' per-k geometry), by key.
    tables: HashMap<Vec<u32>, wgpu::Buffer>,
    /// Autotuned kernel variants by shape class.
    pub(super) autotune: super::autotune::Cache,
}

/// The wgpu backend.
///
/// - Dispatches are recorded into one pending command encoder (one long-lived compute pass)
///   and submitted at [`Backend::sync`], [`Backend::download`] or every 1024 dispatches.
/// - Kernel parameters go to 256-byte slots of one uniform arena, written once per submitted
///   batch (no buffer per dispatch); pipelines are compiled on first use and cached.
/// - Freed buffers are pooled by size and zeroed on reuse; multi-pass kernels take scratch
///   buffers from a pool; downloads go through a reused staging buffer.
/// - wgpu errors are caught (error scopes, an uncaptured-error handler) and returned as
///   [`ComputeError::Gpu`] or [`ComputeError::OutOfMemory`], never a panic.
///
/// Methods take `&self`; one mutex serialises recording, so the backend can be shared.
pub struct GpuBackend {
    pub(crate) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) info: AdapterInfoSummary,
    pub(crate) limits: wgpu::Limits,
    pub(super) state: Mutex<State>,
    /// Errors no scope caught (recorded by the device's handler), reported at the next sync.
    uncaptured: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    /// Products at least this large (in 128x128 output tiles) use the 128x128 matmul kernel.
    pub(crate) big_tiles_min: Mutex<u64>,
    pub(crate) tuning: Tuning,
    /// How dispatches can be timed, or why they cannot.
    pub(super) timestamps: std::result::Result<ProfileMode, String>,
}

/// Kernel choices that benchmarks and debugging override through the environment (read once,
/// when the backend is created).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    /// Keep wgpu's runtime bounds checks in every kernel (`MLP_WGSL_CHECKS=on`); by default
    /// the kernels listed in `kernels::UNCHECKED` run without them.
    pub checks: bool,
    /// Use the aligned double-buffered GEMM when a product qualifies (`MLP_GEMM_FAST=0`
    /// turns it off).
    pub fast_gemm: bool,
    /// Time every dispatch from the start (`MLP_GPU_PROFILE=1`; `pass` forces
    /// [`ProfileMode::PassPerDispatch`]).
    pub profile: Option<Option<ProfileMode>>,
    /// Use the double-buffered table-driven convolution kernels (`conv2d*_fast_*.wgsl`) when
    /// a convolution qualifies (`MLP_CONV_FAST=0` turns them off).
    pub fast_conv: bool,
    /// Force an aligned GEMM tile variant where a product qualifies (`MLP_GEMM_TILE=64x64|
    /// 128x128|128x256|256x128`, the `matmul_fast_RxC.wgsl` files; benchmarks).
    pub gemm_tile: Option<&'static str>,
    /// Force the fast convolutions' tile height (`MLP_CONV_TILE=32|64|128`; benchmarks).
    pub conv_tile: Option<usize>,
    /// Time interchangeable kernel variants per shape class and keep the fastest
    /// (`MLP_GPU_AUTOTUNE=on|off`; unset: on for GPU hardware, off on software adapters). See
    /// [`super::autotune`].
    pub autotune: Option<bool>,
}

/// The kernel file of an aligned GEMM tile variant (`"128x256"`), as `MLP_GEMM_TILE` and
/// [`GpuBackend::set_gemm_tile`] name them.
fn gemm_tile_file(tile: &str) -> Option<&'static str> {
    Some(match tile {
        "64x64" => "matmul_fast_64x64.wgsl",
        "128x128" => "matmul_fast_128x128.wgsl",
        "128x256" => "matmul_fast_128x256.wgsl",
        "256x128" => "matmul_fast_256x128.wgsl",
        _ => return None,
    })
}

/// The fast convolutions' tile heights.
pub(super) const CONV_TILES: [usize; 3] = [32, 64, 128];

impl Tuning {
    /// Reads the knobs; a value it does not know is named in a one-line warning on stderr and
    /// the default kept (a typo must not pass for a measured variant).
    fn from_env() -> Tuning {
        let var = |k: &str| std::env::var(k).unwrap_or_default().to_ascii_lowercase();
        let ignored = |k: &str, v: &str, known: &str| {
            eprintln!("warning: {k}={v} ignored: the values are {known}");
        };
        let flag = |k: &str, default: bool| match var(k).as_str() {
            "" => default,
            "1" | "on" | "true" | "yes" => true,
            "0" | "off" | "false" | "no" => false,
            v => {
                ignored(k, v, "on/1/true/yes and off/0/false/no");
                default
            }
        };
        let profile = match var("MLP_GPU_PROFILE").as_str() {
            "" | "0" | "off" | "false" | "no" => None,
            "1" | "on" | "true" | "yes" => Some(None),
            "pass" => Some(Some(ProfileMode::PassPerDispatch)),
            v => {
                ignored(
                    "MLP_GPU_PROFILE",
                    v,
                    "on/1/true/yes, pass and off/0/false/no",
                );
                None
            }
        };
        let gemm_tile = match var("MLP_GEMM_TILE").as_str() {
            "" => None,
            v => gemm_tile_file(v).or_else(|| {
                ignored("MLP_GEMM_TILE", v, "64x64, 128x128, 128x256 and 256x128");
                None
            }),
        };
        let conv_tile = match var("MLP_CONV_TILE").as_str() {
            "" => None,
            v => v
                .parse()
                .ok()
                .filter(|t| CONV_TILES.contains(t))
                .or_else(|| {
                    ignored("MLP_CONV_TILE", v, "32, 64 and 128");
                    None
                }),
        };
        let autotune = match var("MLP_GPU_AUTOTUNE").as_str() {
            "" | "auto" => None,
            "1" | "on" | "true" | "yes" => Some(true),
            "0" | "off" | "false" | "no" => Some(false),
            v => {
                ignored(
                    "MLP_GPU_AUTOTUNE",
                    v,
                    "auto, on/1/true/yes and off/0/false/no",
                );
                None
            }
        };
        Tuning {
            autotune,
            checks: flag("MLP_WGSL_CHECKS", false),
            fast_gemm: flag("MLP_GEMM_FAST", true),
            profile,
            fast_conv: flag("MLP_CONV_FAST", true),
            gemm_tile,
            conv_tile,
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn wgpu_err(what: &str, e: wgpu::Error) -> ComputeError {
    match e {
        wgpu::Error::OutOfMemory { .. } => ComputeError::OutOfMemory(format!("{what}: {e}")),
        _ => ComputeError::Gpu(format!("{what}: {e}")),
    }
}

/// Runs `f` inside out-of-memory, validation and internal error scopes and returns the first
/// error caught.
pub(crate) fn scoped<T>(device: &wgpu::Device, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let out = f();
    let e3 = pollster::block_on(internal.pop());
    let e2 = pollster::block_on(validation.pop());
    let e1 = pollster::block_on(oom.pop());
    match e1.or(e2).or(e3) {
        Some(e) => Err(wgpu_err(what, e)),
        None => Ok(out),
    }
}

impl GpuBackend {
    /// Opens the adapter chosen by `options` (see [`super::auto_pick`]). Fails with
    /// [`ComputeError::Gpu`] when there is no suitable adapter or the device cannot be created.
    pub fn new(options: GpuOptions) -> Result<GpuBackend> {
        let instance = adapter::instance();
        let adapters = adapter::enumerate(&instance);
        let summaries: Vec<AdapterInfoSummary> = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| adapter::summarize(i, a))
            .collect();
        let index = adapter::choose(&summaries, &options)?;
        GpuBackend::open(&adapters[index], summaries[index].clone())
    }

    fn open(adapter: &wgpu::Adapter, info: AdapterInfoSummary) -> Result<GpuBackend> {
        let have = adapter.limits();
        // WebGPU's defaults, raised to what the adapter offers for big tensors, clamped to the
        // adapter where it offers less than the defaults.
        let mut want = wgpu::Limits::defaults();
        want.max_storage_buffer_binding_size = have.max_storage_buffer_binding_size;
        want.max_buffer_size = have.max_buffer_size;
        want.max_storage_buffers_per_shader_stage = have.max_storage_buffers_per_shader_stage;
        want.max_compute_workgroups_per_dimension = have.max_compute_workgroups_per_dimension;
        want.max_compute_workgroup_storage_size = have.max_compute_workgroup_storage_size;
        want.max_compute_invocations_per_workgroup = have.max_compute_invocations_per_workgroup;
        let want = want.or_worse_values_from(&have);
        let needs: [(&str, u64, u64); 4] = [
            (
                "max_storage_buffers_per_shader_stage",
                want.max_storage_buffers_per_shader_stage as u64,
                8,
            ),
            (
                "max_compute_invocations_per_workgroup",
                want.max_compute_invocations_per_workgroup as u64,
                256,
            ),
            (
                "max_compute_workgroup_storage_size",
                want.max_compute_workgroup_storage_size as u64,
                8192,
            ),
            (
                "max_compute_workgroups_per_dimension",
                want.max_compute_workgroups_per_dimension as u64,
                1024,
            ),
        ];
        for (name, got, need) in needs {
            if got < need {
                return Err(ComputeError::Gpu(format!(
                    "adapter {} offers {name} = {got}, the kernels need {need}",
                    info.name
                )));
            }
        }
        let (mut timestamps, required_features) = super::profile::support(adapter, &info);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("mlp-compute"),
            required_features,
            required_limits: want.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        }))
        .map_err(|e| ComputeError::Gpu(format!("cannot open {}: {e}", info.name)))?;
        let period = queue.get_timestamp_period();
        if timestamps.is_ok() && (period.is_nan() || period <= 0.0) {
            timestamps = Err(format!(
                "per-kernel GPU profiling is not available on {}: its timestamp period is {period}",
                info.name,
            ));
        }
        let uncaptured: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut v = lock(&sink);
            if v.len() < 16 {
                v.push(e.to_string());
            }
        }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *lock(&lost_sink) = Some(format!("device lost ({reason:?}): {msg}"));
        });
        let params_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("mlp params arena"),
            size: (SLOT_BYTES * PARAM_SLOTS) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let gpu = GpuBackend {
            device,
            queue,
            info,
            limits: want,
            state: Mutex::new(State {
                bufs: HashMap::new(),
                next_id: 0,
                pool: HashMap::new(),
                pooled_bytes: 0,
                temps: Vec::new(),
                modules: HashMap::new(),
                pipelines: HashMap::new(),
                params: Vec::with_capacity(SLOT_BYTES * PARAM_SLOTS),
                params_buf,
                pass: None,
                encoder: None,
                staging: None,
                dispatches: 0,
                submits: 0,
                profiler: None,
                tables: HashMap::new(),
                autotune: Default::default(),
            }),
            uncaptured,
            lost,
            big_tiles_min: Mutex::new(256),
            tuning: Tuning::from_env(),
            timestamps,
        };
        if let Some(mode) = gpu.tuning.profile {
            // When the device cannot time kernels, `profile` says why.
            let _ = match mode {
                Some(m) => gpu.enable_profiling_as(m),
                None => gpu.enable_profiling().map(|_| ()),
            };
        }
        Ok(gpu)
    }

    /// The adapter in use.
    pub fn adapter_info(&self) -> &AdapterInfoSummary {
        &self.info
    }

    /// The kernel files compiled so far (each is compiled on first use), sorted.
    pub fn compiled_kernels(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = lock(&self.state).modules.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// `(dispatches recorded, batches submitted)` so far, autotuning's trial runs left out.
    pub fn stats(&self) -> (u64, u64) {
        let st = lock(&self.state);
        (st.dispatches, st.submits)
    }

    /// Tuning knob (tests and benchmarks): the fast convolutions' tile height (32, 64 or 128;
    /// `None` picks by shape), as `MLP_CONV_TILE` sets it.
    pub fn set_conv_tile(&mut self, tile: Option<usize>) -> Result<()> {
        match tile {
            Some(t) if !CONV_TILES.contains(&t) => Err(ComputeError::Other(format!(
                "conv tile {t}: the fast convolutions have tiles of 32, 64 and 128 rows"
            ))),
            _ => {
                self.tuning.conv_tile = tile;
                Ok(())
            }
        }
    }

    /// Tuning knob (tests and benchmarks): force an aligned GEMM tile variant, as
    /// `MLP_GEMM_TILE` does (`"64x64"`, `"128x128"`, `"128x256"`, `"256x128"`; `None`: by
    /// size).
    pub fn set_gemm_tile(&mut self, tile: Option<&str>) -> Result<()> {
        self.tuning.gemm_tile = match tile {
            None => None,
            Some(t) => Some(gemm_tile_file(t).ok_or_else(|| {
                ComputeError::Other(format!(
                    "GEMM tile {t}: the variants are 64x64, 128x128, 128x256 and 256x128"
                ))
            })?),
        };
        Ok(())
    }

    /// Whether kernel variants are autotuned per shape class (see [`super::autotune`]): as set
    /// by [`GpuBackend::set_autotune`] or `MLP_GPU_AUTOTUNE`, else on for GPU hardware and off
    /// on software adapters.
    pub fn autotuning(&self) -> bool {
        self.tuning
            .autotune
            .unwrap_or(self.info.device_type != AdapterType::Cpu)
    }

    /// Turns autotuning on or off (`None`: by adapter type), as `MLP_GPU_AUTOTUNE` does.
    pub fn set_autotune(&mut self, on: Option<bool>) {
        self.tuning.autotune = on;
    }

    /// The kernel variants autotuning has chosen so far, in the order it tuned them, each with
    /// every variant's time.
    pub fn autotuned(&self) -> Vec<TunedKernel> {
        lock(&self.state).autotune.log().to_vec()
    }

    /// Tuning knob (tests and benchmarks): whether qualifying convolutions use the fast
    /// kernels, as `MLP_CONV_FAST` sets it.
    pub fn set_fast_conv(&mut self, on: bool) {
        self.tuning.fast_conv = on;
    }

    /// Tuning knob (benchmarks): products with at least this many 128x128 output tiles use the
    /// 128x128 matmul kernel, smaller ones the 64x64 kernel (4x the workgroups, which keeps a
    /// large GPU busy). Default 256 (a 2048 x 2048 output).
    pub fn set_big_matmul_threshold(&self, tiles: u64) {
        *lock(&self.big_tiles_min) = tiles;
    }

    fn check_alive(&self) -> Result<()> {
        if let Some(msg) = lock(&self.lost).clone() {
            return Err(ComputeError::Gpu(msg));
        }
        Ok(())
    }

    fn take_uncaptured(&self) -> Result<()> {
        let errs = std::mem::take(&mut *lock(&self.uncaptured));
        if errs.is_empty() {
            return Ok(());
        }
        let all = errs.join("; ");
        if all.to_lowercase().contains("out of memory") {
            Err(ComputeError::OutOfMemory(all))
        } else {
            Err(ComputeError::Gpu(all))
        }
    }

    fn storage_usage() -> wgpu::BufferUsages {
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
    }

    /// The largest buffer one kernel binding can address, in bytes.
    fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Bytes of a buffer of `len` f32 (at least 4: bindings cannot be empty), or an
    /// out-of-memory error when one binding cannot address it.
    fn buffer_bytes(&self, len: usize) -> Result<u64> {
        let bytes = (len as u64).saturating_mul(4).max(4);
        let max = self.max_binding();
        if bytes > max || len > u32::MAX as usize {
            return Err(ComputeError::OutOfMemory(format!(
                "a buffer of {len} f32 ({bytes} bytes) exceeds what {} can bind in one kernel \
                 ({max} bytes)",
                self.info.name
            )));
        }
        Ok(bytes)
    }

    fn create_storage(&self, bytes: u64, label: &str) -> Result<wgpu::Buffer> {
        scoped(&self.device, "buffer allocation", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: Self::storage_usage(),
                mapped_at_creation: false,
            })
        })
    }

    /// Ends the open compute pass (if any) and returns the pending encoder, creating one.
    fn encoder<'s>(&self, st: &'s mut State) -> &'s mut wgpu::CommandEncoder {
        st.pass = None;
        st.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("mlp batch"),
                })
        })
    }

    /// Submits the pending batch (parameters first).
    pub(super) fn flush(&self, st: &mut State) -> Result<()> {
        st.pass = None;
        let Some(mut encoder) = st.encoder.take() else {
            st.params.clear();
            return Ok(());
        };
        if let Some(p) = st.profiler.as_mut() {
            p.resolve(&mut encoder);
        }
        let params = std::mem::take(&mut st.params);
        let res = scoped(&self.device, "submit", || {
            if !params.is_empty() {
                self.queue.write_buffer(&st.params_buf, 0, &params);
            }
            self.queue.submit([encoder.finish()]);
        });
        st.params = params;
        st.params.clear();
        st.submits += 1;
        if let Some(p) = st.profiler.as_mut() {
            p.submitted(res.is_ok());
            if p.backlog() {
                // Many batches without a wait: read the finished ones without blocking.
                let _ = self.device.poll(wgpu::PollType::Poll);
                p.collect();
            }
        }
        res
    }

    pub(super) fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| ComputeError::Gpu(format!("waiting for the GPU: {e}")))?;
        Ok(())
    }

    fn lookup(st: &State, buf: BufId) -> Result<(wgpu::Buffer, usize)> {
        st.bufs
            .get(&buf.0)
            .map(|e| (e.buffer.clone(), e.len))
            .ok_or_else(|| ComputeError::Buffer(format!("unknown or freed buffer {buf:?}")))
    }
}

/// Records the kernels of one op: scratch buffers, parameter slots, pipelines, dispatches.
pub(crate) struct Recorder<'a> {
    pub gpu: &'a GpuBackend,
    pub(super) st: &'a mut State,
    pub(super) taken: Vec<wgpu::Buffer>,
}

impl Recorder<'_> {
    /// A scratch buffer of at least `len` f32, valid until the op is recorded. Its contents are
    /// undefined: kernels write every element they later read.
    pub fn temp(&mut self, len: usize) -> Result<wgpu::Buffer> {
        let bytes = self.gpu.buffer_bytes(len)?;
        let best = self
            .st
            .temps
            .iter()
            .enumerate()
            .filter(|(_, b)| b.size() >= bytes)
            .min_by_key(|(_, b)| b.size())
            .map(|(i, _)| i);
        let buf = match best {
            Some(i) => self.st.temps.swap_remove(i),
            None => {
                // Power-of-two sizes (at least 256 bytes) so that scratch buffers get reused,
                // within what one binding can address.
                let size = bytes
                    .next_power_of_two()
                    .max(256)
                    .min(self.gpu.max_binding());
                self.gpu.create_storage(size.max(bytes), "mlp scratch")?
            }
        };
        self.taken.push(buf.clone());
        Ok(buf)
    }

    /// A read-only storage buffer holding `build()`'s words, made once per `key` and kept
    /// (kernels' lookup tables: small, and the same shapes recur every training step).
    pub fn table(&mut self, key: &[u32], build: impl FnOnce() -> Vec<i32>) -> Result<wgpu::Buffer> {
        if let Some(b) = self.st.tables.get(key) {
            return Ok(b.clone());
        }
        if self.st.tables.len() >= 1024 {
            // Bounded: tables in flight stay alive through their recorded bind groups.
            self.st.tables.clear();
        }
        let mut words = build();
        words.resize(words.len().max(4).next_multiple_of(4), 0);
        let bytes: &[u8] = bytemuck::cast_slice(&words);
        let size = bytes.len() as u64;
        let buf = scoped(&self.gpu.device, "table allocation", || {
            self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("mlp table"),
                size,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: true,
            })
        })?;
        {
            let mut view = buf
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| ComputeError::Gpu(format!("cannot write a kernel table: {e}")))?;
            view.copy_from_slice(bytes);
        }
        buf.unmap();
        self.st.tables.insert(key.to_vec(), buf.clone());
        Ok(buf)
    }

    fn pipeline(&mut self, kernel: &'static str, entry: &'static str) -> Result<Pipeline> {
        if let Some(p) = self.st.pipelines.get(&(kernel, entry)) {
            return Ok(p.clone());
        }
        let device = &self.gpu.device;
        let module = match self.st.modules.get(kernel) {
            Some(m) => m.clone(),
            None => {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(kernel),
                    source: wgpu::ShaderSource::Wgsl(kernels::source(kernel).into()),
                };
                let m = if kernels::UNCHECKED.contains(&kernel) && !self.gpu.tuning.checks {
                    // SAFETY: the kernels in `UNCHECKED` index only in range by construction,
                    // given the preconditions their host code checks before every dispatch
                    // (see each kernel's header); the conformance tests cover them.
                    scoped(device, kernel, || unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    })?
                } else {
                    scoped(device, kernel, || device.create_shader_module(desc))?
                };
                self.st.modules.insert(kernel, m.clone());
                m
            }
        };
        let p = scoped(device, kernel, || {
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[],
                    // Every kernel writes its workgroup memory before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
            let layout = pipeline.get_bind_group_layout(0);
            Pipeline { pipeline, layout }
        })?;
        self.st.pipelines.insert((kernel, entry), p.clone());
        Ok(p)
    }

    /// A grid of `groups` workgroups for a 1-D kernel that folds `(wg.y * nwg.x + wg.x)`:
    /// more than the per-dimension limit spill into y.
    pub fn grid1(&self, groups: u64) -> Result<[u32; 3]> {
        let max = self.gpu.limits.max_compute_workgroups_per_dimension as u64;
        let groups = groups.max(1);
        if groups <= max {
            return Ok([groups as u32, 1, 1]);
        }
        let y = groups.div_ceil(max);
        if y > max {
            return Err(ComputeError::Gpu(format!(
                "{groups} workgroups exceed the {max} x {max} grid"
            )));
        }
        Ok([max as u32, y as u32, 1])
    }

    /// Checks a 3-D grid against the device limit.
    pub fn check_grid(&self, g: [u64; 3]) -> Result<[u32; 3]> {
        let max = self.gpu.limits.max_compute_workgroups_per_dimension as u64;
        if g.iter().any(|&d| d > max) {
            return Err(ComputeError::Gpu(format!(
                "grid {g:?} exceeds {max} workgroups per dimension"
            )));
        }
        Ok([g[0] as u32, g[1] as u32, g[2] as u32])
    }

    /// Records one dispatch of `kernel`'s `entry` with these parameter words (binding 0) and
    /// storage buffers (`(binding, buffer)`), over `groups` workgroups.
    pub fn run(
        &mut self,
        kernel: &'static str,
        entry: &'static str,
        params: &[u32],
        bufs: &[(u32, &wgpu::Buffer)],
        groups: [u32; 3],
    ) -> Result<()> {
        if groups.contains(&0) {
            return Ok(());
        }
        assert!(
            params.len() * 4 <= SLOT_BYTES,
            "{kernel}: too many parameters"
        );
        let pipe = self.pipeline(kernel, entry)?;
        if self.st.params.len() >= SLOT_BYTES * PARAM_SLOTS
            || self.st.profiler.as_ref().is_some_and(|p| p.full())
        {
            self.gpu.flush(self.st)?;
        }
        let offset = self.st.params.len();
        self.st
            .params
            .extend_from_slice(bytemuck::cast_slice::<u32, u8>(params));
        self.st.params.resize(offset + SLOT_BYTES, 0);
        let device = &self.gpu.device;
        let mut entries = Vec::with_capacity(bufs.len() + 1);
        entries.push(wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.st.params_buf,
                offset: offset as u64,
                size: NonZeroU64::new(SLOT_BYTES as u64),
            }),
        });
        for (binding, buf) in bufs {
            entries.push(wgpu::BindGroupEntry {
                binding: *binding,
                resource: buf.as_entire_binding(),
            });
        }
        // Not in an error scope (scopes cost as much as the rest of a dispatch): the bindings
        // are checked above and by `check_dispatch`, and anything wgpu still rejects surfaces
        // from the scope around the submission (the pass is invalid then) or the
        // uncaptured-error handler, at the next sync or download.
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &pipe.layout,
            entries: &entries,
        });
        // Profiling: the query set and index of this dispatch's start timestamp.
        let stamp = self
            .st
            .profiler
            .as_mut()
            .map(|p| (p.mode, p.next(device, kernel, entry)));
        let per_pass = matches!(stamp, Some((ProfileMode::PassPerDispatch, _)));
        if self.st.pass.is_none() || per_pass {
            let encoder = self.gpu.encoder(self.st);
            let timestamp_writes = match &stamp {
                Some((ProfileMode::PassPerDispatch, (queries, i))) => {
                    Some(wgpu::ComputePassTimestampWrites {
                        query_set: queries,
                        beginning_of_pass_write_index: Some(*i),
                        end_of_pass_write_index: Some(*i + 1),
                    })
                }
                _ => None,
            };
            let pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("mlp kernels"),
                    timestamp_writes,
                })
                .forget_lifetime();
            self.st.pass = Some(pass);
        }
        let pass = self.st.pass.as_mut().expect("pass just opened");
        let inside = match &stamp {
            Some((ProfileMode::InsidePasses, (queries, i))) => Some((queries, *i)),
            _ => None,
        };
        if let Some((queries, i)) = inside {
            pass.write_timestamp(queries, i);
        }
        pass.set_pipeline(&pipe.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        if let Some((queries, i)) = inside {
            pass.write_timestamp(queries, i + 1);
        }
        self.st.dispatches += 1;
        Ok(())
    }
}

/// A buffer handle resolved for recording.
pub(crate) struct GpuTensor<'t> {
    pub buf: wgpu::Buffer,
    pub shape: &'t [usize],
}

impl GpuTensor<'_> {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

impl Backend for GpuBackend {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Gpu
    }

    fn as_gpu(&self) -> Option<&GpuBackend> {
        Some(self)
    }

    fn describe(&self) -> String {
        let i = &self.info;
        format!(
            "{} ({}, {}, driver {}{})",
            i.name,
            i.device_type,
            i.backend,
            if i.driver.is_empty() { "?" } else { &i.driver },
            if i.driver_info.is_empty() {
                String::new()
            } else {
                format!(" {}", i.driver_info)
            }
        )
    }

    fn alloc(&self, len: usize) -> Result<BufId> {
        self.check_alive()?;
        let bytes = self.buffer_bytes(len)?;
        let mut st = lock(&self.state);
        let reused = st.pool.get_mut(&bytes).and_then(|v| v.pop());
        let buffer = match reused {
            Some(b) => {
                st.pooled_bytes -= bytes;
                // Zero it in order with the work that used it before.
                self.encoder(&mut st).clear_buffer(&b, 0, None);
                b
            }
            None => self.create_storage(bytes, "mlp tensor")?,
        };
        let id = st.next_id;
        st.next_id = st
            .next_id
            .checked_add(1)
            .ok_or_else(|| ComputeError::Buffer("too many buffers".into()))?;
        st.bufs.insert(id, Entry { buffer, len });
        Ok(BufId(id))
    }

    fn free(&self, buf: BufId) {
        let mut st = lock(&self.state);
        if let Some(e) = st.bufs.remove(&buf.0) {
            let bytes = e.buffer.size();
            let room = st.pooled_bytes + bytes <= POOL_CAP_BYTES;
            let list = st.pool.entry(bytes).or_default();
            if room && list.len() < POOL_PER_SIZE {
                list.push(e.buffer);
                st.pooled_bytes += bytes;
            }
        }
    }

    fn len(&self, buf: BufId) -> Result<usize> {
        let st = lock(&self.state);
        Self::lookup(&st, buf).map(|(_, len)| len)
    }

    fn upload(&self, buf: BufId, data: &[f32]) -> Result<()> {
        self.check_alive()?;
        let mut st = lock(&self.state);
        let (dst, len) = Self::lookup(&st, buf)?;
        if data.len() > len {
            return Err(ComputeError::Buffer(format!(
                "upload of {} elements into buffer {buf:?} of {len}",
                data.len()
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if st.encoder.is_none() {
            // Nothing pending: the queue orders the write after earlier submissions.
            return scoped(&self.device, "upload", || {
                self.queue.write_buffer(&dst, 0, bytes)
            });
        }
        // Pending dispatches may read the old contents: copy in order with them.
        let src = scoped(&self.device, "upload", || {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("mlp upload"),
                    contents: bytes,
                    usage: wgpu::BufferUsages::COPY_SRC,
                })
        })?;
        self.encoder(&mut st)
            .copy_buffer_to_buffer(&src, 0, &dst, 0, bytes.len() as u64);
        Ok(())
    }

    fn download(&self, buf: BufId) -> Result<Vec<f32>> {
        self.check_alive()?;
        let mut st = lock(&self.state);
        let (src, len) = Self::lookup(&st, buf)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = len as u64 * 4;
        let staging = match st.staging.take() {
            Some(s) if s.size() >= bytes => s,
            _ => scoped(&self.device, "download", || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("mlp staging"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?,
        };
        self.encoder(&mut st)
            .copy_buffer_to_buffer(&src, 0, &staging, 0, bytes);
        self.flush(&mut st)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let slice = staging.slice(0..bytes);
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| ComputeError::Gpu("download: mapping never completed".into()))?
            .map_err(|e| ComputeError::Gpu(format!("download: {e}")))?;
        let data = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| ComputeError::Gpu(format!("download: {e:?}")))?;
            bytemuck::pod_collect_to_vec::<u8, f32>(&view)
        };
        staging.unmap();
        if staging.size() <= STAGING_KEEP_BYTES {
            st.staging = Some(staging);
        }
        if let Some(p) = st.profiler.as_mut() {
            p.collect();
        }
        drop(st);
        self.take_uncaptured()?;
        Ok(data)
    }

    fn dispatch(&self, op: &Op, inputs: &[&Tensor], outputs: &[&Tensor]) -> Result<()> {
        check_dispatch(self, op, inputs, outputs)?;
        self.check_alive()?;
        let mut st = lock(&self.state);
        let resolve = |st: &State, t: &Tensor| -> Result<wgpu::Buffer> {
            if t.numel() > u32::MAX as usize {
                return Err(ComputeError::OutOfMemory(format!(
                    "{}: tensor {:?} has more than 2^32 elements",
                    op.name(),
                    t.shape
                )));
            }
            Self::lookup(st, t.buf).map(|(b, _)| b)
        };
        let ins = inputs
            .iter()
            .map(|t| {
                Ok(GpuTensor {
                    buf: resolve(&st, t)?,
                    shape: &t.shape,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let outs = outputs
            .iter()
            .map(|t| {
                Ok(GpuTensor {
                    buf: resolve(&st, t)?,
                    shape: &t.shape,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut rec = Recorder {
            gpu: self,
            st: &mut st,
            taken: Vec::new(),
        };
        let res = super::ops::record(&mut rec, op, &ins, &outs);
        let taken = std::mem::take(&mut rec.taken);
        st.temps.extend(taken);
        res
    }

    fn sync(&self) -> Result<()> {
        self.check_alive()?;
        let mut st = lock(&self.state);
        self.flush(&mut st)?;
        drop(st);
        self.wait()?;
        if let Some(p) = lock(&self.state).profiler.as_mut() {
            p.collect();
        }
        self.check_alive()?;
        self.take_uncaptured()
    }
}
