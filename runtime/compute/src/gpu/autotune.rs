//! Kernel autotuning, as cuDNN's benchmark mode does it, but exact.
//!
//! Where an op can be recorded with several kernel variants that compute the same values bit for
//! bit, the first dispatch of each shape class times every variant and the fastest is kept for
//! that class from then on. Today that is:
//! - a GEMM's aligned tile (`matmul_fast_*.wgsl`: 64x64, 128x128, 128x256, 256x128), against the
//!   size rule's choice;
//! - a fast convolution's tile height (32, 64 or 128 rows; the weight gradient's K split does
//!   not depend on it).
//!
//! Every variant accumulates each output element with the same `fma` sequence over K (one
//! generator, `kernels/gen/gemm.py`), so the choice changes speed only: results stay identical
//! to the last bit whatever the timings say (`tests/autotune.rs` checks it), and the training
//! loop's "same seed, same result" holds.
//!
//! How a class is timed: the pending batch is submitted and awaited; each variant runs once to
//! compile its pipeline and once more to estimate its time, then three interleaved rounds of as
//! many back-to-back runs as take about a millisecond; a variant's figure is its best round's
//! time per run, wall clock from submission to completion. The trial runs use the op's own
//! buffers: everything recorded before has completed, and the op only writes its output (and
//! scratch), which the real dispatch then writes again. Trial runs are left out of the profile
//! and of [`super::GpuBackend::stats`].
//!
//! Classes: a GEMM by its size rounded up to powers of two and its operand layouts; a
//! convolution by its geometry with the batch rounded up to a power of two. A cached variant
//! that does not qualify for a later shape of its class gives way to the size rule. Products
//! under [`MIN_FLOPS`] are not tuned (a variant cannot gain much there), and the cache is
//! bounded.
//!
//! On by default on GPU hardware; off on software adapters (lavapipe), where the trial runs cost
//! more than they save. `MLP_GPU_AUTOTUNE=on|off` or [`super::GpuBackend::set_autotune`]
//! overrides it; a forced tile (`MLP_GEMM_TILE`, `MLP_CONV_TILE`) wins over both.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::device::Recorder;
use crate::error::Result;

/// Ops under this many floating-point operations keep the size rule's kernel.
pub(crate) const MIN_FLOPS: f64 = (1u64 << 26) as f64;
/// Classes remembered; past this the cache starts over.
const MAX_CLASSES: usize = 4096;
/// Tuning reports kept.
const MAX_LOG: usize = 1024;
/// Back-to-back runs per measurement: as many as take about this long.
const TARGET: Duration = Duration::from_millis(1);
const MAX_REPS: usize = 64;
/// Interleaved measurement rounds per variant.
const ROUNDS: usize = 3;

/// One tuned choice, for reports (`mlp bench ... --json` under `"autotune"`).
#[derive(Clone, Debug, Serialize)]
pub struct TunedKernel {
    /// The op and the shape it was tuned on, e.g. `matmul 2048x2048x2048`.
    pub op: String,
    /// The variant kept.
    pub chosen: String,
    /// The size rule's variant (what runs with autotuning off).
    pub default: String,
    /// Every variant with its best time per run, in microseconds.
    pub candidates: Vec<(String, f64)>,
}

/// The tuned choices of one backend.
#[derive(Default)]
pub(crate) struct Cache {
    chosen: HashMap<Vec<u32>, String>,
    log: Vec<TunedKernel>,
}

impl Cache {
    pub fn log(&self) -> &[TunedKernel] {
        &self.log
    }
}

/// The power of two at or above `v` (at least 1), as a class coordinate.
pub(crate) fn class(v: usize) -> u32 {
    v.max(1)
        .checked_next_power_of_two()
        .unwrap_or(1 << 31)
        .min(1 << 31) as u32
}

impl Recorder<'_> {
    /// Which of the interchangeable variants `labels` (the size rule's first) to record for
    /// the op of class `key`: the cached choice, or the fastest after timing each with
    /// `record(rec, i)`. A cached label missing from `labels` gives 0.
    pub fn autotune(
        &mut self,
        key: Vec<u32>,
        what: impl FnOnce() -> String,
        labels: &[String],
        mut record: impl FnMut(&mut Recorder<'_>, usize) -> Result<()>,
    ) -> Result<usize> {
        if let Some(label) = self.st.autotune.chosen.get(&key) {
            return Ok(labels.iter().position(|l| l == label).unwrap_or(0));
        }
        // Submit what is pending (with its timestamps, when profiling) before the trials.
        self.gpu.flush(self.st)?;
        let profiler = self.st.profiler.take();
        let counts = (self.st.dispatches, self.st.submits);
        let times = self.time_variants(labels.len(), &mut record);
        (self.st.dispatches, self.st.submits) = counts;
        self.st.profiler = profiler;
        let times = times?;
        let mut best = 0;
        for (i, t) in times.iter().enumerate() {
            if *t < times[best] {
                best = i;
            }
        }
        let cache = &mut self.st.autotune;
        if cache.chosen.len() >= MAX_CLASSES {
            cache.chosen.clear();
        }
        cache.chosen.insert(key, labels[best].clone());
        if cache.log.len() < MAX_LOG {
            cache.log.push(TunedKernel {
                op: what(),
                chosen: labels[best].clone(),
                default: labels[0].clone(),
                candidates: labels
                    .iter()
                    .zip(&times)
                    .map(|(l, t)| (l.clone(), (t * 1e7).round() / 10.0))
                    .collect(),
            });
        }
        Ok(best)
    }

    /// Seconds per run of each variant (best round).
    fn time_variants(
        &mut self,
        n: usize,
        record: &mut impl FnMut(&mut Recorder<'_>, usize) -> Result<()>,
    ) -> Result<Vec<f64>> {
        let keep = self.taken.len();
        let mut timed = |rec: &mut Recorder<'_>, i: usize, reps: usize| -> Result<f64> {
            let t0 = Instant::now();
            for _ in 0..reps {
                record(rec, i)?;
                // The trial's scratch buffers are free again for the next run (dispatches are
                // ordered), as after any op.
                let extra = rec.taken.split_off(keep);
                rec.st.temps.extend(extra);
            }
            rec.gpu.flush(rec.st)?;
            rec.gpu.wait()?;
            Ok(t0.elapsed().as_secs_f64() / reps as f64)
        };
        self.gpu.wait()?;
        let mut reps = vec![1; n];
        for (i, r) in reps.iter_mut().enumerate() {
            timed(self, i, 1)?; // compiles the pipelines
            let t = timed(self, i, 1)?;
            *r = ((TARGET.as_secs_f64() / t.max(1e-7)).ceil() as usize).clamp(1, MAX_REPS);
        }
        let mut best = vec![f64::INFINITY; n];
        for _ in 0..ROUNDS {
            for i in 0..n {
                best[i] = best[i].min(timed(self, i, reps[i])?);
            }
        }
        Ok(best)
    }
}
