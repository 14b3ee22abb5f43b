//! Per-kernel GPU time from timestamp queries (opt-in: [`super::GpuBackend::enable_profiling`]
//! or `MLP_GPU_PROFILE=1`).
//!
//! Each dispatch recorded while profiling is on gets two timestamps, one just before it and one
//! just after it: inside the batch's compute pass when the device has
//! `TIMESTAMP_QUERY_INSIDE_PASSES` ([`ProfileMode::InsidePasses`]), otherwise as the begin and
//! end timestamps of a compute pass of its own ([`ProfileMode::PassPerDispatch`], which needs
//! only `TIMESTAMP_QUERY`). A batch's timestamps go to a query set of its own, which is resolved
//! and copied into a mappable buffer at the end of the batch; the buffer is mapped when the
//! batch is submitted and read at the next `sync` or `download` (which wait for the GPU anyway),
//! so profiling adds no waits. The time of a dispatch is its end minus its start timestamp,
//! summed per kernel (file name, plus `:entry` for entry points other than `main`).
//!
//! On Vulkan both timestamps are written at the bottom of the pipe: the start one when
//! everything before it has finished, the end one when the dispatch has. A dispatch's time is
//! then the time from the previous dispatch's completion to its own, so work that overlaps the
//! previous dispatch counts for that one and the times add up to the GPU's busy time, with no
//! double counting. Copies, clears and idle gaps between dispatches are not counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use serde::Serialize;

use super::adapter::AdapterInfoSummary;
use super::device::{lock, GpuBackend};
use crate::backend::Backend;
use crate::error::{ComputeError, Result};

/// How dispatches get their timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProfileMode {
    /// Timestamps written inside the one long-lived compute pass (the batch is recorded exactly
    /// as without profiling). Needs `TIMESTAMP_QUERY_INSIDE_PASSES`.
    InsidePasses,
    /// One compute pass per dispatch, with the pass's begin and end timestamps. Needs only
    /// `TIMESTAMP_QUERY`.
    PassPerDispatch,
}

impl std::fmt::Display for ProfileMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProfileMode::InsidePasses => "timestamps inside the compute pass",
            ProfileMode::PassPerDispatch => "one timestamped compute pass per dispatch",
        })
    }
}

/// GPU time spent in one kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelTime {
    /// The kernel file (`conv2d.wgsl`), with `:entry` for entry points other than `main`.
    pub kernel: String,
    /// Dispatches timed.
    pub calls: u64,
    /// Their total GPU time, in nanoseconds.
    pub total_ns: u64,
}

/// Timestamps per query set: two per dispatch, and a batch holds at most
/// [`super::device::PARAM_SLOTS`] dispatches (the batch is submitted when it is full).
pub(crate) const QUERIES: u32 = 2 * super::device::PARAM_SLOTS as u32;
/// Submitted batches whose timestamps are not read yet, before a non-blocking poll reads the
/// finished ones (long runs without a `sync`).
const MAX_PENDING: usize = 64;

const MAP_WAITING: u8 = 0;
const MAP_OK: u8 = 1;
const MAP_FAILED: u8 = 2;

/// A query set with the buffers its timestamps are resolved and read back through.
struct Slab {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
}

/// A submitted batch whose timestamps are on their way back.
struct Pending {
    slab: Slab,
    labels: Vec<(&'static str, &'static str)>,
    state: Arc<AtomicU8>,
    /// Leading dispatches recorded before the last [`Profiler::reset`]: read, then dropped.
    skip: usize,
}

/// The profiling state of a backend (behind its mutex; `None` there when profiling is off).
pub(crate) struct Profiler {
    pub mode: ProfileMode,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
    /// The query set of the batch being recorded, and its dispatches in order.
    current: Option<Slab>,
    labels: Vec<(&'static str, &'static str)>,
    /// Leading dispatches of this batch recorded before the last reset.
    skip_current: usize,
    /// Resolved and submitted, not read yet.
    staged: Option<Pending>,
    pending: Vec<Pending>,
    spare: Vec<Slab>,
    totals: HashMap<(&'static str, &'static str), (u64, f64)>,
    /// Dispatches whose timestamps could not be read back.
    pub lost: u64,
}

impl Profiler {
    pub fn new(mode: ProfileMode, period_ns: f32) -> Profiler {
        Profiler {
            mode,
            period_ns: period_ns as f64,
            current: None,
            labels: Vec::new(),
            skip_current: 0,
            staged: None,
            pending: Vec::new(),
            spare: Vec::new(),
            totals: HashMap::new(),
            lost: 0,
        }
    }

    /// Whether the batch's query set is full (the batch must be submitted first).
    pub fn full(&self) -> bool {
        2 * self.labels.len() as u32 + 2 > QUERIES
    }

    /// Reserves the timestamps of the next dispatch: the query set and the index of the start
    /// timestamp (the end one is the next index).
    pub fn next(
        &mut self,
        device: &wgpu::Device,
        kernel: &'static str,
        entry: &'static str,
    ) -> (wgpu::QuerySet, u32) {
        let slab = match self.current.take() {
            Some(s) => s,
            None => self.spare.pop().unwrap_or_else(|| Slab {
                queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("mlp profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count: QUERIES,
                }),
                resolve: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("mlp profile resolve"),
                    size: QUERIES as u64 * wgpu::QUERY_SIZE as u64,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                readback: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("mlp profile readback"),
                    size: QUERIES as u64 * wgpu::QUERY_SIZE as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
            }),
        };
        let queries = slab.queries.clone();
        self.current = Some(slab);
        let index = 2 * self.labels.len() as u32;
        self.labels.push((kernel, entry));
        (queries, index)
    }

    /// Records the resolution of this batch's timestamps at the end of `encoder` (no compute
    /// pass may be open on it).
    pub fn resolve(&mut self, encoder: &mut wgpu::CommandEncoder) {
        let Some(slab) = self.current.take() else {
            return;
        };
        if self.labels.is_empty() {
            self.spare.push(slab);
            return;
        }
        let n = 2 * self.labels.len() as u32;
        let bytes = n as u64 * wgpu::QUERY_SIZE as u64;
        encoder.resolve_query_set(&slab.queries, 0..n, &slab.resolve, 0);
        encoder.copy_buffer_to_buffer(&slab.resolve, 0, &slab.readback, 0, bytes);
        self.staged = Some(Pending {
            slab,
            labels: std::mem::take(&mut self.labels),
            state: Arc::new(AtomicU8::new(MAP_WAITING)),
            skip: std::mem::take(&mut self.skip_current),
        });
    }

    /// After the batch's submission: maps its read-back buffer (read at the next wait), or
    /// drops its timestamps when the submission failed.
    pub fn submitted(&mut self, ok: bool) {
        let Some(p) = self.staged.take() else {
            return;
        };
        if !ok {
            self.lost += (p.labels.len() - p.skip) as u64;
            return;
        }
        let bytes = 2 * p.labels.len() as u64 * wgpu::QUERY_SIZE as u64;
        let state = p.state.clone();
        p.slab
            .readback
            .slice(0..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                state.store(
                    if r.is_ok() { MAP_OK } else { MAP_FAILED },
                    Ordering::Release,
                );
            });
        self.pending.push(p);
    }

    /// Whether enough batches wait to be read that a non-blocking poll is worth it.
    pub fn backlog(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    /// Adds the timestamps of every batch whose read-back buffer is mapped (call after the
    /// device was polled).
    pub fn collect(&mut self) {
        let mut i = 0;
        while i < self.pending.len() {
            let state = self.pending[i].state.load(Ordering::Acquire);
            if state == MAP_WAITING {
                i += 1;
                continue;
            }
            let p = self.pending.swap_remove(i);
            if state == MAP_FAILED {
                self.lost += (p.labels.len() - p.skip) as u64;
                continue;
            }
            let bytes = 2 * p.labels.len() as u64 * wgpu::QUERY_SIZE as u64;
            let slice = p.slab.readback.slice(0..bytes);
            let ticks: Option<Vec<u64>> = slice
                .get_mapped_range()
                .ok()
                .map(|view| bytemuck::pod_collect_to_vec::<u8, u64>(&view));
            p.slab.readback.unmap();
            match ticks {
                Some(ticks) => {
                    for (k, label) in p.labels.iter().enumerate().skip(p.skip) {
                        let dt = ticks[2 * k + 1].saturating_sub(ticks[2 * k]);
                        let e = self.totals.entry(*label).or_insert((0, 0.0));
                        e.0 += 1;
                        e.1 += dt as f64 * self.period_ns;
                    }
                }
                None => self.lost += (p.labels.len() - p.skip) as u64,
            }
            self.spare.push(p.slab);
        }
    }

    /// Forgets the totals and every timestamp of work recorded so far.
    pub fn reset(&mut self) {
        self.totals.clear();
        self.lost = 0;
        for p in self.pending.iter_mut().chain(self.staged.as_mut()) {
            p.skip = p.labels.len();
        }
        self.skip_current = self.labels.len();
    }

    /// The totals per kernel, the most time first (then by name).
    pub fn report(&self) -> Vec<KernelTime> {
        let mut v: Vec<KernelTime> = self
            .totals
            .iter()
            .map(|(&(kernel, entry), &(calls, ns))| KernelTime {
                kernel: if entry == "main" {
                    kernel.to_string()
                } else {
                    format!("{kernel}:{entry}")
                },
                calls,
                total_ns: ns.round() as u64,
            })
            .collect();
        v.sort_by(|a, b| {
            b.total_ns
                .cmp(&a.total_ns)
                .then_with(|| a.kernel.cmp(&b.kernel))
        });
        v
    }
}

/// How dispatches can be timed on `adapter` (or why not), and the device features to request
/// for it: timestamp queries when the adapter offers them (enabling the feature records
/// nothing by itself).
pub(super) fn support(
    adapter: &wgpu::Adapter,
    info: &AdapterInfoSummary,
) -> (std::result::Result<ProfileMode, String>, wgpu::Features) {
    let offered = adapter.features();
    let ts = wgpu::Features::TIMESTAMP_QUERY;
    let inside = ts | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
    if offered.contains(inside) {
        (Ok(ProfileMode::InsidePasses), inside)
    } else if offered.contains(ts) {
        (Ok(ProfileMode::PassPerDispatch), ts)
    } else {
        (
            Err(format!(
                "per-kernel GPU profiling needs timestamp queries, which {} ({}) does not offer \
                 (wgpu feature TIMESTAMP_QUERY)",
                info.name, info.backend
            )),
            wgpu::Features::empty(),
        )
    }
}

impl GpuBackend {
    /// How this device can time kernels ([`GpuBackend::enable_profiling`]), or why it cannot
    /// (the adapter does not offer timestamp queries).
    pub fn profiling_support(&self) -> std::result::Result<ProfileMode, String> {
        self.timestamps.clone()
    }

    /// Starts timing every dispatch per kernel, the best way the device offers
    /// ([`ProfileMode::InsidePasses`] where it can); [`GpuBackend::profile`] reads the totals.
    /// Fails with a message naming the adapter when it does not offer timestamp queries.
    /// Enabling it again keeps the totals.
    pub fn enable_profiling(&self) -> Result<ProfileMode> {
        let mode = self.timestamps.clone().map_err(ComputeError::Gpu)?;
        self.enable_profiling_as(mode)?;
        Ok(mode)
    }

    /// [`GpuBackend::enable_profiling`] in a given mode (tests; `MLP_GPU_PROFILE=pass`):
    /// [`ProfileMode::PassPerDispatch`] works wherever profiling does.
    pub fn enable_profiling_as(&self, mode: ProfileMode) -> Result<()> {
        let best = self.timestamps.clone().map_err(ComputeError::Gpu)?;
        if mode == ProfileMode::InsidePasses && best != ProfileMode::InsidePasses {
            return Err(ComputeError::Gpu(format!(
                "{} does not offer timestamps inside compute passes (wgpu feature \
                 TIMESTAMP_QUERY_INSIDE_PASSES); profile with one pass per dispatch instead",
                self.info.name
            )));
        }
        let mut st = lock(&self.state);
        match st.profiler.as_mut() {
            Some(p) => p.mode = mode,
            None => {
                let period = self.queue.get_timestamp_period();
                st.profiler = Some(Box::new(Profiler::new(mode, period)));
            }
        }
        Ok(())
    }

    /// Whether profiling is on, and how.
    pub fn profiling(&self) -> Option<ProfileMode> {
        lock(&self.state).profiler.as_ref().map(|p| p.mode)
    }

    /// GPU time per kernel since profiling was enabled (or last reset), the most time first.
    /// Submits pending work and waits for it, like [`Backend::sync`]. Fails with a clear
    /// message when profiling is off or the device cannot time kernels.
    pub fn profile(&self) -> Result<Vec<KernelTime>> {
        if lock(&self.state).profiler.is_none() {
            return Err(ComputeError::Gpu(match &self.timestamps {
                Err(why) => why.clone(),
                Ok(_) => "per-kernel GPU profiling is off (GpuBackend::enable_profiling or \
                          MLP_GPU_PROFILE=1 turns it on)"
                    .to_string(),
            }));
        }
        self.sync()?;
        let st = lock(&self.state);
        Ok(st.profiler.as_ref().map(|p| p.report()).unwrap_or_default())
    }

    /// Dispatches since the last reset whose timestamps could not be read back (a failed
    /// submission or mapping): [`GpuBackend::profile`] misses them.
    pub fn profile_dropped(&self) -> u64 {
        lock(&self.state).profiler.as_ref().map_or(0, |p| p.lost)
    }

    /// Forgets the per-kernel totals, and the timestamps of work recorded so far; profiling
    /// stays on.
    pub fn reset_profile(&self) {
        if let Some(p) = lock(&self.state).profiler.as_mut() {
            p.reset();
        }
    }
}
