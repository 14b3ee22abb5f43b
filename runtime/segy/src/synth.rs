//! Labelled synthetic seismic surveys for training fault-segmentation models.
//!
//! A [`Survey`] is a small, precomputed description of a 3-D earth model:
//!
//! * a layered reflectivity series on a 1-D *relative geologic time* axis
//!   (random layer thicknesses, heavy-tailed reflection coefficients with a
//!   few strong horizons, and a smooth lateral amplitude variation along each
//!   horizon);
//! * folding: a vertical shift field `s(x, y, u) = P(x, y) + (u / N) B(x, y)`,
//!   where `P` is a planar regional dip and `B` a sum of Gaussian domes and
//!   basins whose relief grows with depth;
//! * faults: gently curved dipping planes, each moving its hanging wall
//!   vertically by a throw that tapers along strike and with depth (normal
//!   faults mostly, some reverse), applied after folding;
//! * a zero-phase Ricker wavelet of the requested peak frequency;
//! * band-limited noise (white Gaussian noise filtered with the same wavelet)
//!   at the requested signal-to-noise ratio.
//!
//! Traces are produced on demand, inline by inline, with memory proportional
//! to one inline, so surveys of any size can be streamed to disk. Every
//! reflector is placed at its exact (fractional) time and the continuous
//! Ricker wavelet is sampled around it, which is the convolution of the
//! reflectivity with the wavelet without the staircase artefacts of rounding
//! dipping reflectors to whole samples.
//!
//! Output is deterministic: a trace depends only on the [`SynthSpec`] and its
//! (inline, xline) position, never on which traces were generated before or
//! on the number of threads. Random numbers come from ChaCha8 streams seeded
//! from the seed (and, for noise, the trace position); the only
//! platform-dependent operations are the standard library's `exp`, `ln`,
//! `sin` and `cos`.
//!
//! Geometry uses one trace spacing as the unit of horizontal distance and one
//! sample as the unit of vertical distance, so a "60 degree" fault drops
//! `tan(60°) = 1.73` samples per trace.

use std::f64::consts::PI;
use std::io;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::npy::{DType, NpyWriter};

/// Most faults a survey may have.
pub const MAX_FAULTS: usize = 1000;

/// Longest half-length, in samples, of the Ricker wavelet; it bounds how low
/// `peak_hz` may be for a given `dt_us`.
pub const MAX_WAVELET_HALF_LEN: usize = 10_000;

/// The Ricker wavelet is cut where `(pi f t)^2 = 11`, i.e. `|w| < 4e-4`.
const RICKER_CUT: f64 = 3.316_624_790_355_4;

/// Half-width, in traces measured horizontally and perpendicular to strike,
/// of the labelled band around each fault plane.
pub const LABEL_HALF_WIDTH: f64 = 0.75;

/// Parameters of a synthetic survey.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// Number of inlines (slowest axis).
    pub ilines: usize,
    /// Number of crosslines per inline.
    pub xlines: usize,
    /// Samples per trace.
    pub samples: usize,
    /// Seed of every random choice; the same spec always gives the same survey.
    pub seed: u64,
    /// Number of faults (0 gives an unfaulted survey with all-zero labels).
    pub faults: usize,
    /// Signal-to-noise ratio in dB (signal power over noise power);
    /// `None` for noise-free data.
    pub snr_db: Option<f64>,
    /// Peak frequency of the Ricker wavelet in Hz.
    pub peak_hz: f64,
    /// Sample interval in microseconds.
    pub dt_us: u32,
}

impl Default for SynthSpec {
    /// A 64 x 64 x 128 survey with seed 0, three faults, 20 dB SNR, a 25 Hz
    /// wavelet and 4 ms sampling.
    fn default() -> Self {
        SynthSpec {
            ilines: 64,
            xlines: 64,
            samples: 128,
            seed: 0,
            faults: 3,
            snr_db: Some(20.0),
            peak_hz: 25.0,
            dt_us: 4000,
        }
    }
}

/// Invalid [`SynthSpec`] parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SynthError {
    /// A size is below its minimum.
    #[error("synthetic survey: {name} must be at least {min}, got {value}")]
    TooSmall {
        /// The parameter: `ilines`, `xlines` or `samples`.
        name: &'static str,
        /// Its minimum.
        min: usize,
        /// The value given.
        value: usize,
    },
    /// The survey holds more samples than can be addressed.
    #[error(
        "synthetic survey: size {ilines} x {xlines} x {samples} is too large (its byte size overflows)"
    )]
    TooLarge {
        /// Inlines given.
        ilines: usize,
        /// Crosslines given.
        xlines: usize,
        /// Samples given.
        samples: usize,
    },
    /// The sample interval is zero.
    #[error("synthetic survey: sample interval dt_us must be positive, got 0")]
    ZeroSampleInterval,
    /// The wavelet's peak frequency is not between the minimum (which keeps
    /// the wavelet within [`MAX_WAVELET_HALF_LEN`] samples) and Nyquist.
    #[error(
        "synthetic survey: peak_hz must be at least {min_hz:.4} Hz and below the Nyquist frequency {nyquist_hz} Hz of dt_us = {dt_us}, got {peak_hz}"
    )]
    PeakFrequency {
        /// The value given.
        peak_hz: f64,
        /// Lowest accepted peak frequency for this sample interval.
        min_hz: f64,
        /// Nyquist frequency of the sample interval.
        nyquist_hz: f64,
        /// The sample interval.
        dt_us: u32,
    },
    /// The signal-to-noise ratio is NaN or infinite.
    #[error("synthetic survey: snr_db must be a finite number of dB, got {0}")]
    Snr(f64),
    /// Too many faults.
    #[error("synthetic survey: faults must be at most {MAX_FAULTS}, got {0}")]
    TooManyFaults(usize),
}

/// Public description of one fault of a [`Survey`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultInfo {
    /// Dip direction, in degrees counter-clockwise from the inline-index axis
    /// towards the crossline-index axis (the strike is perpendicular).
    pub dip_azimuth_deg: f64,
    /// Dip angle from horizontal, in degrees, with one trace spacing taken
    /// as equal to one sample.
    pub dip_deg: f64,
    /// Largest throw in samples; positive for a normal fault (hanging wall
    /// down), negative for a reverse fault.
    pub max_throw: f64,
    /// A point of the plane inside the survey: (inline index, crossline
    /// index, sample index).
    pub center: (f64, f64, f64),
}

/// One Gaussian dome (positive amplitude: layers pushed down) or basin.
#[derive(Debug, Clone)]
struct Bump {
    x: f64,
    y: f64,
    /// `1 / (2 sigma^2)`.
    inv_two_var: f64,
    /// Shift at the centre, in samples, at depth `u = N`.
    amp: f64,
}

/// One reflector: its coefficient at its mean and the phases of its lateral
/// amplitude variation, `c (1 + sum_m A_m sin(phi_m + q_m(x, y)))`, stored as
/// `A_m sin phi_m` and `A_m cos phi_m`.
#[derive(Debug, Clone, Copy, Default)]
struct Reflector {
    c: f32,
    sin: [f32; 2],
    cos: [f32; 2],
}

/// Where a fault plane crosses one vertical trace.
#[derive(Debug, Clone, Copy)]
struct Crossing {
    /// Time (in samples) of the crossing; above it is the hanging wall.
    t: f64,
    /// Vertical displacement of the hanging wall there, in samples.
    throw: f64,
    /// Half-height, in samples, of the labelled band around `t`.
    half_band: f64,
}

#[derive(Debug, Clone)]
struct Fault {
    x0: f64,
    y0: f64,
    t0: f64,
    /// Unit dip direction (horizontal).
    cos: f64,
    sin: f64,
    tan_dip: f64,
    /// Map-view curvature of the fault trace.
    curv: f64,
    /// Signed largest throw.
    throw: f64,
    /// Relative throw decrease at `a = half_len` along strike.
    taper_along: f64,
    /// Relative throw decrease at one survey depth from `t0`.
    taper_depth: f64,
    half_len: f64,
}

impl Fault {
    fn crossing(&self, x: f64, y: f64, n: f64) -> Crossing {
        let dx = x - self.x0;
        let dy = y - self.y0;
        let h = self.cos * dx + self.sin * dy;
        let a = -self.sin * dx + self.cos * dy;
        let q = h - self.curv * a * a;
        let t = self.t0 + self.tan_dip * q;
        let ra = a / self.half_len;
        let rd = (t - self.t0) / n;
        let f_along = (1.0 - self.taper_along * ra * ra).max(0.6);
        let f_depth = (1.0 - self.taper_depth * rd * rd).max(0.6);
        let grad = (1.0 + 4.0 * self.curv * self.curv * a * a).sqrt();
        Crossing {
            t,
            throw: self.throw * f_along * f_depth,
            half_band: LABEL_HALF_WIDTH * grad * self.tan_dip,
        }
    }
}

/// The sampled Ricker wavelet: a finely tabulated copy for placing
/// reflectors at fractional times, and the copy at whole samples for
/// filtering noise.
#[derive(Debug, Clone)]
struct Wavelet {
    /// Half-length in samples (the wavelet is treated as zero beyond).
    half: usize,
    /// Table points per sample.
    per_sample: usize,
    /// `table[m] = w(m / per_sample - half)` for `m` in `0..=2 half per_sample`,
    /// plus one trailing zero.
    table: Vec<f32>,
    /// `sampled[m] = w(m - half)` for `m` in `0..=2 half`.
    sampled: Vec<f32>,
    /// Sum of squares of `sampled`.
    energy: f64,
}

/// Value of a zero-phase Ricker wavelet of peak frequency `peak_hz` at time
/// `t_s` seconds from its centre: `(1 - 2 (pi f t)^2) exp(-(pi f t)^2)`.
/// Its maximum is 1, at `t_s = 0`.
pub fn ricker(peak_hz: f64, t_s: f64) -> f64 {
    let a = PI * peak_hz * t_s;
    let a2 = a * a;
    (1.0 - 2.0 * a2) * (-a2).exp()
}

impl Wavelet {
    fn new(peak_hz: f64, dt_s: f64) -> Wavelet {
        let pf_dt = PI * peak_hz * dt_s;
        let half = ((RICKER_CUT / pf_dt).ceil() as usize).max(1);
        // Interpolation error scales with 1 / (per_sample * half)^2: keep the
        // product near 700 (error below 1e-5 of the peak).
        let per_sample = ((700.0 / half as f64).ceil() as usize).clamp(1, 64);
        let steps = 2 * half * per_sample;
        let mut table: Vec<f32> = (0..=steps)
            .map(|m| {
                let d = m as f64 / per_sample as f64 - half as f64;
                ricker(peak_hz, d * dt_s) as f32
            })
            .collect();
        table.push(0.0);
        let sampled: Vec<f32> = (0..=2 * half)
            .map(|m| ricker(peak_hz, (m as f64 - half as f64) * dt_s) as f32)
            .collect();
        let energy = sampled.iter().map(|&w| f64::from(w) * f64::from(w)).sum();
        Wavelet {
            half,
            per_sample,
            table,
            sampled,
            energy,
        }
    }
}

/// Per-thread scratch buffers.
#[derive(Default)]
struct Scratch {
    crossings: Vec<(f64, f64)>,
    white: Vec<f32>,
    filtered: Vec<f32>,
}

/// A synthetic survey: the precomputed earth model of a [`SynthSpec`],
/// from which inlines of amplitudes and fault labels are generated on demand.
#[derive(Debug, Clone)]
pub struct Survey {
    spec: SynthSpec,
    /// Samples per trace, as `f64`.
    n: f64,
    /// Reflector positions on the relative-geologic-time axis, ascending.
    tau: Vec<f64>,
    /// Reflection coefficients (already scaled to unit-peak amplitudes) and
    /// their lateral amplitude variation, parallel to `tau`.
    refl: Vec<Reflector>,
    /// Wave vectors `(kx, ky)` of the two lateral amplitude waves.
    waves: [(f64, f64); 2],
    /// Planar dip: `P = gx (x - cx) + gy (y - cy)`.
    gx: f64,
    gy: f64,
    cx: f64,
    cy: f64,
    bumps: Vec<Bump>,
    faults: Vec<Fault>,
    wavelet: Wavelet,
    /// Standard deviation of the white noise before filtering (0: no noise).
    noise_sigma: f32,
    /// Root-mean-square of the noise-free amplitudes (estimated).
    signal_rms: f64,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a sequence of words into one seed.
fn mix(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0x5EED_u64, |acc, &w| splitmix(acc ^ splitmix(w)))
}

const STREAM_LAYERS_UP: u64 = 1;
const STREAM_LAYERS_DOWN: u64 = 2;
const STREAM_FOLD: u64 = 3;
const STREAM_FAULT: u64 = 4;
const STREAM_NOISE: u64 = 5;

fn stream(seed: u64, words: &[u64]) -> ChaCha8Rng {
    let mut all = vec![seed];
    all.extend_from_slice(words);
    ChaCha8Rng::seed_from_u64(mix(&all))
}

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    rng.random::<f64>()
}

/// Exponential variate of mean 1.
fn exponential(rng: &mut ChaCha8Rng) -> f64 {
    -(1.0 - uniform(rng)).ln()
}

/// Fills `out` with standard normal variates (Marsaglia's polar method).
fn fill_gaussian(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let mut i = 0;
    while i < out.len() {
        let u = 2.0 * uniform(rng) - 1.0;
        let v = 2.0 * uniform(rng) - 1.0;
        let s = u * u + v * v;
        if s >= 1.0 || s == 0.0 {
            continue;
        }
        let m = (-2.0 * s.ln() / s).sqrt();
        out[i] = (u * m) as f32;
        if i + 1 < out.len() {
            out[i + 1] = (v * m) as f32;
        }
        i += 2;
    }
}

impl Survey {
    /// Validates `spec` and precomputes the earth model.
    ///
    /// Fails, naming the parameter, when a size is zero (or `samples < 2`),
    /// the survey's byte size overflows, `dt_us` is zero, `peak_hz` is not
    /// below the Nyquist frequency or so low that the wavelet would exceed
    /// [`MAX_WAVELET_HALF_LEN`] samples, `snr_db` is not finite, or
    /// `faults > MAX_FAULTS`.
    ///
    /// Construction computes up to 48 x 48 noise-free traces to scale the
    /// amplitudes (peak about 1) and to estimate the signal power that sets
    /// the noise level.
    pub fn new(spec: &SynthSpec) -> Result<Survey, SynthError> {
        for (name, value, min) in [
            ("ilines", spec.ilines, 1),
            ("xlines", spec.xlines, 1),
            ("samples", spec.samples, 2),
        ] {
            if value < min {
                return Err(SynthError::TooSmall { name, min, value });
            }
        }
        let too_large = || SynthError::TooLarge {
            ilines: spec.ilines,
            xlines: spec.xlines,
            samples: spec.samples,
        };
        let total = (spec.ilines as u64)
            .checked_mul(spec.xlines as u64)
            .and_then(|v| v.checked_mul(spec.samples as u64))
            .and_then(|v| v.checked_mul(4))
            .ok_or_else(too_large)?;
        usize::try_from(total).map_err(|_| too_large())?;
        if spec.dt_us == 0 {
            return Err(SynthError::ZeroSampleInterval);
        }
        let dt_s = f64::from(spec.dt_us) * 1e-6;
        let nyquist_hz = 0.5 / dt_s;
        let min_hz = RICKER_CUT / (PI * dt_s * MAX_WAVELET_HALF_LEN as f64);
        if !(spec.peak_hz >= min_hz && spec.peak_hz < nyquist_hz) {
            return Err(SynthError::PeakFrequency {
                peak_hz: spec.peak_hz,
                min_hz,
                nyquist_hz,
                dt_us: spec.dt_us,
            });
        }
        if let Some(snr) = spec.snr_db {
            if !snr.is_finite() {
                return Err(SynthError::Snr(snr));
            }
        }
        if spec.faults > MAX_FAULTS {
            return Err(SynthError::TooManyFaults(spec.faults));
        }

        let n = spec.samples as f64;
        let lx = spec.ilines as f64;
        let ly = spec.xlines as f64;
        let lmax = lx.max(ly);
        let wavelet = Wavelet::new(spec.peak_hz, dt_s);

        // Folding.
        let mut rng = stream(spec.seed, &[STREAM_FOLD]);
        let nbumps = 3 + (uniform(&mut rng) * 6.0) as usize;
        let mut bumps = Vec::with_capacity(nbumps);
        for _ in 0..nbumps {
            let x = lx * (-0.1 + 1.2 * uniform(&mut rng));
            let y = ly * (-0.1 + 1.2 * uniform(&mut rng));
            let sigma = (lmax * (0.08 + 0.22 * uniform(&mut rng))).max(3.0);
            let sign = if uniform(&mut rng) < 0.5 { -1.0 } else { 1.0 };
            // Relief in samples at the bottom, limited so that flanks dip at
            // most about 0.6 samples per trace.
            let amp = (n * (0.06 + 0.14 * uniform(&mut rng))).min(sigma);
            bumps.push(Bump {
                x,
                y,
                inv_two_var: 1.0 / (2.0 * sigma * sigma),
                amp: sign * amp,
            });
        }
        // Keep the vertical stretch 1 - B/N within [0.55, 1.45].
        let relief: f64 = bumps.iter().map(|b| b.amp.abs()).sum();
        if relief > 0.45 * n {
            let k = 0.45 * n / relief;
            for b in &mut bumps {
                b.amp *= k;
            }
        }
        let relief = relief.min(0.45 * n);
        let azimuth = 2.0 * PI * uniform(&mut rng);
        let grad = (0.2 * uniform(&mut rng)).min(0.4 * n / lmax);
        let (gx, gy) = (grad * azimuth.cos(), grad * azimuth.sin());
        let (cx, cy) = (0.5 * lx, 0.5 * ly);
        let planar_max = gx.abs() * cx + gy.abs() * cy;
        // Lateral amplitude variation along horizons: two plane waves.
        let mut wave = || {
            let dir = 2.0 * PI * uniform(&mut rng);
            let k = 2.0 * PI / (lmax * (0.6 + 1.4 * uniform(&mut rng)));
            (k * dir.cos(), k * dir.sin())
        };
        let waves = [wave(), wave()];

        // Faults, each from its own stream so that adding faults keeps the
        // others.
        let faults: Vec<Fault> = (0..spec.faults)
            .map(|k| {
                let mut rng = stream(spec.seed, &[STREAM_FAULT, k as u64]);
                let azimuth = 2.0 * PI * uniform(&mut rng);
                let dip = (50.0 + 30.0 * uniform(&mut rng)).to_radians();
                let x0 = (0.1 + 0.8 * uniform(&mut rng)) * (lx - 1.0);
                let y0 = (0.1 + 0.8 * uniform(&mut rng)) * (ly - 1.0);
                let t0 = (0.25 + 0.5 * uniform(&mut rng)) * (n - 1.0);
                let curv = (2.0 * uniform(&mut rng) - 1.0) * 0.5 / lmax;
                let mut throw = (6.0 + 19.0 * uniform(&mut rng)).min((0.25 * n).max(1.0));
                if uniform(&mut rng) < 0.2 {
                    throw = -throw;
                }
                Fault {
                    x0,
                    y0,
                    t0,
                    cos: azimuth.cos(),
                    sin: azimuth.sin(),
                    tan_dip: dip.tan(),
                    curv,
                    throw,
                    taper_along: 0.5 * uniform(&mut rng),
                    taper_depth: 0.5 * uniform(&mut rng),
                    half_len: (0.5 * lmax).max(1.0),
                }
            })
            .collect();
        let throw_sum: f64 = faults.iter().map(|f| f.throw.abs()).sum();

        // Layers: reflectors on the relative-time axis over every time any
        // output sample (or its wavelet) can map to. They grow upwards and
        // downwards from 0 with separate streams, so a longer range only
        // appends reflectors.
        let half = wavelet.half as f64;
        let lo = -half - 2.0 - throw_sum;
        let hi = n + half + 2.0 + throw_sum;
        let (a_min, a_max) = (1.0 - relief / n, 1.0 + relief / n);
        let tau_lo = (a_min * lo).min(a_max * lo) - planar_max - 1.0;
        let tau_hi = (a_min * hi).max(a_max * hi) + planar_max + 1.0;
        let period = 1.0 / (spec.peak_hz * dt_s);
        let mean_thickness = (0.4 * period).max(1.5);
        let draw_layer = |rng: &mut ChaCha8Rng| {
            let thickness = 1.0 + (mean_thickness - 1.0) * exponential(rng);
            let sign = if uniform(rng) < 0.5 { -1.0 } else { 1.0 };
            let strong = if uniform(rng) < 0.05 { 2.5 } else { 1.0 };
            let magnitude = 0.3 + 0.7 * exponential(rng);
            let mut r = Reflector {
                c: (sign * strong * magnitude) as f32,
                ..Reflector::default()
            };
            for m in 0..2 {
                let amp = 0.25 * uniform(rng);
                let phase = 2.0 * PI * uniform(rng);
                r.sin[m] = (amp * phase.sin()) as f32;
                r.cos[m] = (amp * phase.cos()) as f32;
            }
            (thickness, r)
        };
        let mut down = Vec::new();
        let mut rng = stream(spec.seed, &[STREAM_LAYERS_DOWN]);
        let mut t = 0.0;
        loop {
            let (thickness, c) = draw_layer(&mut rng);
            t -= thickness;
            if t < tau_lo {
                break;
            }
            down.push((t, c));
        }
        let mut up = Vec::new();
        let mut rng = stream(spec.seed, &[STREAM_LAYERS_UP]);
        let mut t = 0.0;
        while t <= tau_hi {
            let (thickness, c) = draw_layer(&mut rng);
            up.push((t, c));
            t += thickness;
        }
        let (tau, refl): (Vec<f64>, Vec<Reflector>) = down.into_iter().rev().chain(up).unzip();

        let mut survey = Survey {
            spec: spec.clone(),
            n,
            tau,
            refl,
            waves,
            gx,
            gy,
            cx,
            cy,
            bumps,
            faults,
            wavelet,
            noise_sigma: 0.0,
            signal_rms: 0.0,
        };

        // Scale to unit peak amplitude and estimate the signal power from a
        // fixed grid of up to 48 x 48 noise-free traces (every trace of a
        // small survey), independent of what is generated later.
        let pick = |len: usize| -> Vec<usize> {
            let k = len.min(48);
            if k == 1 {
                vec![0]
            } else {
                (0..k).map(|m| m * (len - 1) / (k - 1)).collect()
            }
        };
        let grid: Vec<(usize, usize)> = pick(spec.ilines)
            .into_iter()
            .flat_map(|i| pick(spec.xlines).into_iter().map(move |j| (i, j)))
            .collect();
        let (peak, sum_sq) = grid
            .par_iter()
            .map_init(
                || (Scratch::default(), vec![0f32; spec.samples]),
                |(scratch, trace), &(i, j)| {
                    survey.signal_trace(i as f64, j as f64, trace, &mut scratch.crossings);
                    let peak = trace.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
                    let sq: f64 = trace.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                    (peak, sq)
                },
            )
            .collect::<Vec<_>>()
            .into_iter()
            .fold((0f64, 0f64), |(p, s), (pk, sq)| (p.max(pk), s + sq));
        let scale = if peak > 0.0 { 1.0 / peak } else { 1.0 };
        for r in &mut survey.refl {
            r.c = (f64::from(r.c) * scale) as f32;
        }
        let mean_sq = sum_sq / (grid.len() * spec.samples) as f64 * scale * scale;
        survey.signal_rms = mean_sq.sqrt();
        if let Some(snr) = spec.snr_db {
            let noise_power = mean_sq / 10f64.powf(snr / 10.0);
            survey.noise_sigma = (noise_power / survey.wavelet.energy).sqrt() as f32;
        }
        Ok(survey)
    }

    /// The parameters this survey was built from.
    pub fn spec(&self) -> &SynthSpec {
        &self.spec
    }

    /// Number of values of one inline: `xlines * samples`.
    pub fn inline_len(&self) -> usize {
        self.spec.xlines * self.spec.samples
    }

    /// Root-mean-square amplitude of the noise-free data (estimated at
    /// construction; the data is scaled so that its peak is about 1).
    pub fn signal_rms(&self) -> f64 {
        self.signal_rms
    }

    /// Expected root-mean-square amplitude of the added noise (0 when
    /// noise-free).
    pub fn noise_rms(&self) -> f64 {
        f64::from(self.noise_sigma) * self.wavelet.energy.sqrt()
    }

    /// Half-length in samples of the truncated Ricker wavelet.
    pub fn wavelet_half_len(&self) -> usize {
        self.wavelet.half
    }

    /// The faults of the model.
    pub fn fault_info(&self) -> Vec<FaultInfo> {
        self.faults
            .iter()
            .map(|f| FaultInfo {
                dip_azimuth_deg: f.sin.atan2(f.cos).to_degrees().rem_euclid(360.0),
                dip_deg: f.tan_dip.atan().to_degrees(),
                max_throw: f.throw,
                center: (f.x0, f.y0, f.t0),
            })
            .collect()
    }

    fn check_inline(&self, i: usize, len: usize, what: &str) {
        assert!(
            i < self.spec.ilines,
            "inline index {i} out of range (survey has {} inlines)",
            self.spec.ilines
        );
        assert_eq!(
            len,
            self.inline_len(),
            "{what} buffer must hold xlines * samples = {} values",
            self.inline_len()
        );
    }

    /// Amplitudes of inline `i` (0-based), row-major `[xlines][samples]`.
    ///
    /// # Panics
    /// If `i >= ilines` or `out.len() != xlines * samples`.
    pub fn inline(&self, i: usize, out: &mut [f32]) {
        self.check_inline(i, out.len(), "amplitude");
        out.par_chunks_mut(self.spec.samples)
            .enumerate()
            .for_each_init(Scratch::default, |s, (j, trace)| {
                self.trace_into(i, j, trace, s);
            });
    }

    /// Fault labels of inline `i`, same layout as [`inline`](Self::inline):
    /// 1 within [`LABEL_HALF_WIDTH`] traces (horizontally) of a fault plane,
    /// else 0.
    ///
    /// # Panics
    /// If `i >= ilines` or `out.len() != xlines * samples`.
    pub fn inline_labels(&self, i: usize, out: &mut [u8]) {
        self.check_inline(i, out.len(), "label");
        out.par_chunks_mut(self.spec.samples)
            .enumerate()
            .for_each(|(j, trace)| self.label_trace(i as f64, j as f64, trace));
    }

    /// Amplitudes and labels of inline `i` in one pass; equal to calling
    /// [`inline`](Self::inline) and [`inline_labels`](Self::inline_labels).
    ///
    /// # Panics
    /// If `i >= ilines` or either buffer's length is not `xlines * samples`.
    pub fn inline_with_labels(&self, i: usize, amplitudes: &mut [f32], labels: &mut [u8]) {
        self.check_inline(i, amplitudes.len(), "amplitude");
        self.check_inline(i, labels.len(), "label");
        let ns = self.spec.samples;
        amplitudes
            .par_chunks_mut(ns)
            .zip(labels.par_chunks_mut(ns))
            .enumerate()
            .for_each_init(Scratch::default, |s, (j, (trace, lab))| {
                self.trace_into(i, j, trace, s);
                self.label_trace(i as f64, j as f64, lab);
            });
    }

    /// Amplitudes of the single trace at inline `i`, crossline `j`.
    ///
    /// # Panics
    /// If the position is outside the survey or `out.len() != samples`.
    pub fn trace(&self, i: usize, j: usize, out: &mut [f32]) {
        assert!(
            i < self.spec.ilines && j < self.spec.xlines,
            "trace ({i}, {j}) outside the {} x {} survey",
            self.spec.ilines,
            self.spec.xlines
        );
        assert_eq!(
            out.len(),
            self.spec.samples,
            "trace buffer must hold samples values"
        );
        self.trace_into(i, j, out, &mut Scratch::default());
    }

    /// Streams all fault labels to a `uint8` `.npy` file of shape
    /// `(ilines, xlines, samples)`, one inline at a time.
    pub fn write_labels_npy(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let s = &self.spec;
        let mut w = NpyWriter::create(path, DType::U8, &[s.ilines, s.xlines, s.samples])?;
        let mut buf = vec![0u8; self.inline_len()];
        for i in 0..s.ilines {
            self.inline_labels(i, &mut buf);
            w.write_u8(&buf)?;
        }
        w.finish()
    }

    /// Streams all amplitudes to a `float32` `.npy` file of shape
    /// `(ilines, xlines, samples)`, one inline at a time.
    pub fn write_amplitudes_npy(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let s = &self.spec;
        let mut w = NpyWriter::create(path, DType::F32, &[s.ilines, s.xlines, s.samples])?;
        let mut buf = vec![0f32; self.inline_len()];
        for i in 0..s.ilines {
            self.inline(i, &mut buf);
            w.write_f32(&buf)?;
        }
        w.finish()
    }

    fn trace_into(&self, i: usize, j: usize, out: &mut [f32], s: &mut Scratch) {
        self.signal_trace(i as f64, j as f64, out, &mut s.crossings);
        self.add_noise(i, j, out, s);
    }

    /// Planar shift `P` and vertical stretch `a = 1 - B / N` at (x, y): the
    /// folded relative time of depth `u` is `a u - P`.
    fn fold_at(&self, x: f64, y: f64) -> (f64, f64) {
        let p = self.gx * (x - self.cx) + self.gy * (y - self.cy);
        let b: f64 = self
            .bumps
            .iter()
            .map(|b| {
                let dx = x - b.x;
                let dy = y - b.y;
                b.amp * (-(dx * dx + dy * dy) * b.inv_two_var).exp()
            })
            .sum();
        (p, 1.0 - b / self.n)
    }

    /// Noise-free trace at (x, y).
    fn signal_trace(&self, x: f64, y: f64, out: &mut [f32], crossings: &mut Vec<(f64, f64)>) {
        out.fill(0.0);
        let (p, a) = self.fold_at(x, y);
        let mut lateral = [0f32; 4];
        for (m, &(kx, ky)) in self.waves.iter().enumerate() {
            let q = kx * x + ky * y;
            lateral[2 * m] = q.cos() as f32;
            lateral[2 * m + 1] = q.sin() as f32;
        }
        let half = self.wavelet.half as f64;
        // Reflectors outside [lo, hi] cannot reach an output sample.
        let lo = -half - 1.0;
        let hi = self.n - 1.0 + half + 1.0;
        crossings.clear();
        // Shift of the relative-time axis at `lo`: the throws of every fault
        // whose hanging wall (above the plane) contains that point.
        let mut shift = 0.0;
        for f in &self.faults {
            let c = f.crossing(x, y, self.n);
            if c.t > lo {
                shift += c.throw;
                if c.t < hi {
                    crossings.push((c.t, c.throw));
                }
            }
        }
        crossings.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut start = lo;
        for k in 0..=crossings.len() {
            let (end, throw) = crossings.get(k).copied().unwrap_or((hi, 0.0));
            if end > start {
                self.place_reflectors((start, end), shift, (p, a), &lateral, out);
                start = end;
            }
            shift -= throw;
        }
    }

    /// Adds the wavelets of the reflectors seen between times `ta` and `tb`
    /// of a trace where the relative time is `a (t - shift) - p`; `lateral`
    /// holds the cosine and sine of the trace's phase in each lateral
    /// amplitude wave.
    fn place_reflectors(
        &self,
        (ta, tb): (f64, f64),
        shift: f64,
        (p, a): (f64, f64),
        lateral: &[f32; 4],
        out: &mut [f32],
    ) {
        let tau_a = a * (ta - shift) - p;
        let tau_b = a * (tb - shift) - p;
        let first = self.tau.partition_point(|&v| v < tau_a);
        let w = &self.wavelet;
        let k = w.per_sample;
        let half = w.half as f64;
        let len = out.len() as i64;
        for (&tau, r) in self.tau[first..].iter().zip(&self.refl[first..]) {
            if tau >= tau_b {
                break;
            }
            let c = r.c
                * (1.0
                    + r.sin[0] * lateral[0]
                    + r.cos[0] * lateral[1]
                    + r.sin[1] * lateral[2]
                    + r.cos[1] * lateral[3]);
            let t = (tau + p) / a + shift;
            // First output sample within the wavelet's support.
            let n0 = (t - half).ceil();
            let pos = (n0 - t + half) * k as f64;
            let idx0 = pos.floor();
            let frac = (pos - idx0) as f32;
            let idx0 = idx0 as i64;
            let n0 = n0 as i64;
            let count = ((t + half).floor() as i64 - n0 + 1).max(0);
            let m_start = (-n0).max(0);
            let m_end = count.min(len - n0);
            if m_start >= m_end {
                continue;
            }
            for m in m_start..m_end {
                let idx = (idx0 + m * k as i64) as usize;
                let v = w.table[idx] + frac * (w.table[idx + 1] - w.table[idx]);
                out[(n0 + m) as usize] += c * v;
            }
        }
    }

    /// Adds band-limited noise to the trace at inline `i`, crossline `j`,
    /// from a random stream owned by that trace.
    fn add_noise(&self, i: usize, j: usize, out: &mut [f32], s: &mut Scratch) {
        if self.noise_sigma == 0.0 {
            return;
        }
        let ns = out.len();
        let taps = &self.wavelet.sampled;
        let mut rng = stream(self.spec.seed, &[STREAM_NOISE, i as u64, j as u64]);
        s.white.resize(ns + taps.len() - 1, 0.0);
        fill_gaussian(&mut rng, &mut s.white);
        s.filtered.clear();
        s.filtered.resize(ns, 0.0);
        // The wavelet is symmetric, so correlation equals convolution.
        for (m, &w) in taps.iter().enumerate() {
            for (acc, &z) in s.filtered.iter_mut().zip(&s.white[m..m + ns]) {
                *acc += w * z;
            }
        }
        for (o, &f) in out.iter_mut().zip(&s.filtered) {
            *o += self.noise_sigma * f;
        }
    }

    /// Fault labels of the trace at (x, y).
    fn label_trace(&self, x: f64, y: f64, out: &mut [u8]) {
        out.fill(0);
        let last = (out.len() - 1) as f64;
        for f in &self.faults {
            let c = f.crossing(x, y, self.n);
            let lo = (c.t - c.half_band).ceil().max(0.0);
            let hi = (c.t + c.half_band).floor().min(last);
            if lo <= hi {
                out[lo as usize..=hi as usize].fill(1);
            }
        }
    }

    /// Whether the point is in the hanging wall of fault `k` (test helper).
    #[cfg(test)]
    fn in_hanging_wall(&self, k: usize, x: f64, y: f64, t: f64) -> bool {
        t < self.faults[k].crossing(x, y, self.n).t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(il: usize, xl: usize, ns: usize) -> SynthSpec {
        SynthSpec {
            ilines: il,
            xlines: xl,
            samples: ns,
            ..SynthSpec::default()
        }
    }

    fn volume(s: &Survey) -> (Vec<f32>, Vec<u8>) {
        let len = s.inline_len();
        let mut amp = vec![0f32; len * s.spec().ilines];
        let mut lab = vec![0u8; len * s.spec().ilines];
        for i in 0..s.spec().ilines {
            s.inline_with_labels(
                i,
                &mut amp[i * len..(i + 1) * len],
                &mut lab[i * len..(i + 1) * len],
            );
        }
        (amp, lab)
    }

    fn corr(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let ma = a.iter().sum::<f64>() / n;
        let mb = b.iter().sum::<f64>() / n;
        let mut sab = 0.0;
        let mut saa = 0.0;
        let mut sbb = 0.0;
        for (x, y) in a.iter().zip(b) {
            sab += (x - ma) * (y - mb);
            saa += (x - ma) * (x - ma);
            sbb += (y - mb) * (y - mb);
        }
        sab / (saa * sbb).sqrt()
    }

    #[test]
    fn validation_names_the_bad_parameter() {
        let bad = |f: &dyn Fn(&mut SynthSpec)| {
            let mut s = SynthSpec::default();
            f(&mut s);
            Survey::new(&s).unwrap_err()
        };
        let msg = |e: SynthError| e.to_string();
        assert!(msg(bad(&|s| s.ilines = 0)).contains("ilines"));
        assert!(msg(bad(&|s| s.xlines = 0)).contains("xlines"));
        assert!(msg(bad(&|s| s.samples = 0)).contains("samples"));
        assert_eq!(
            bad(&|s| s.samples = 1),
            SynthError::TooSmall {
                name: "samples",
                min: 2,
                value: 1
            }
        );
        assert!(msg(bad(&|s| s.dt_us = 0)).contains("dt_us"));
        for peak in [0.0, -5.0, 0.01, f64::NAN, f64::INFINITY, 125.0, 300.0] {
            let e = msg(bad(&|s| s.peak_hz = peak));
            assert!(e.contains("peak_hz") && e.contains("125"), "{e}");
        }
        for snr in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(msg(bad(&|s| s.snr_db = Some(snr))).contains("snr_db"));
        }
        assert!(msg(bad(&|s| s.faults = MAX_FAULTS + 1)).contains("faults"));
        let e = bad(&|s| {
            s.ilines = usize::MAX / 2;
            s.xlines = 3;
        });
        assert!(matches!(e, SynthError::TooLarge { .. }), "{e}");
        let e = bad(&|s| {
            s.ilines = 1 << 21;
            s.xlines = 1 << 21;
            s.samples = 1 << 21;
        });
        assert!(msg(e).contains("too large"));
        // Edge sizes are accepted.
        for (il, xl, ns) in [(1, 1, 2), (1, 50, 3), (40, 1, 2), (2, 2, 700)] {
            let s = Survey::new(&spec(il, xl, ns)).unwrap();
            let (amp, lab) = volume(&s);
            assert!(amp.iter().all(|v| v.is_finite()));
            assert!(lab.iter().all(|&l| l <= 1));
        }
        // Peak frequency just below Nyquist works.
        let mut s = spec(4, 4, 64);
        s.peak_hz = 124.0;
        let sv = Survey::new(&s).unwrap();
        assert!(volume(&sv).0.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let s = spec(12, 20, 96);
        let a = volume(&Survey::new(&s).unwrap());
        let b = volume(&Survey::new(&s).unwrap());
        assert_eq!(a.0.len(), 12 * 20 * 96);
        assert!(a
            .0
            .iter()
            .zip(&b.0)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(a.1, b.1);
        let c = volume(
            &Survey::new(&SynthSpec {
                seed: 1,
                ..s.clone()
            })
            .unwrap(),
        );
        let differing = a.0.iter().zip(&c.0).filter(|(x, y)| x != y).count();
        assert!(differing > a.0.len() / 2, "{differing}");
        assert_ne!(a.1, c.1);
        // The noise-free models differ too, not only the noise.
        let d = volume(
            &Survey::new(&SynthSpec {
                snr_db: None,
                ..s.clone()
            })
            .unwrap(),
        );
        let e = volume(
            &Survey::new(&SynthSpec {
                snr_db: None,
                seed: 9,
                ..s
            })
            .unwrap(),
        );
        assert_ne!(d.0, e.0);
    }

    #[test]
    fn inline_is_independent_of_call_order() {
        let s = Survey::new(&spec(10, 16, 80)).unwrap();
        let len = s.inline_len();
        let in_order: Vec<Vec<f32>> = (0..10)
            .map(|i| {
                let mut v = vec![0f32; len];
                s.inline(i, &mut v);
                v
            })
            .collect();
        let fresh = Survey::new(&spec(10, 16, 80)).unwrap();
        for i in [7, 3, 9, 0, 3, 5] {
            let mut v = vec![0f32; len];
            fresh.inline(i, &mut v);
            assert_eq!(v, in_order[i], "inline {i}");
            let mut lab = vec![0u8; len];
            let mut amp = vec![0f32; len];
            fresh.inline_with_labels(i, &mut amp, &mut lab);
            assert_eq!(amp, in_order[i]);
            let mut lab2 = vec![0u8; len];
            fresh.inline_labels(i, &mut lab2);
            assert_eq!(lab, lab2);
            let mut tr = vec![0f32; 80];
            fresh.trace(i, 11, &mut tr);
            assert_eq!(tr, &in_order[i][11 * 80..12 * 80]);
        }
        // The noisy run in a single-threaded pool gives the same bits.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut v = vec![0f32; len];
        pool.install(|| s.inline(4, &mut v));
        assert_eq!(v, in_order[4]);
    }

    #[test]
    fn labels_present_iff_faults() {
        for seed in 0..4 {
            let mut sp = spec(24, 28, 100);
            sp.seed = seed;
            sp.faults = 0;
            let (_, lab) = volume(&Survey::new(&sp).unwrap());
            assert!(lab.iter().all(|&l| l == 0), "seed {seed}");
            for faults in [1, 3] {
                sp.faults = faults;
                let (_, lab) = volume(&Survey::new(&sp).unwrap());
                let ones = lab.iter().filter(|&&l| l == 1).count();
                assert!(lab.iter().all(|&l| l <= 1));
                let frac = ones as f64 / lab.len() as f64;
                assert!(
                    ones > 0 && frac < 0.1 * faults as f64,
                    "seed {seed} faults {faults}: {ones} labelled ({frac})"
                );
            }
        }
        // Even a single trace is crossed by its fault.
        for seed in 0..5 {
            let mut sp = spec(1, 1, 64);
            sp.seed = seed;
            sp.faults = 1;
            let s = Survey::new(&sp).unwrap();
            let mut lab = vec![0u8; 64];
            s.inline_labels(0, &mut lab);
            assert!(lab.contains(&1), "seed {seed}");
        }
    }

    #[test]
    fn labels_follow_the_plane_and_are_thin() {
        let mut sp = spec(40, 40, 120);
        sp.faults = 1;
        sp.seed = 3;
        let s = Survey::new(&sp).unwrap();
        let (_, lab) = volume(&s);
        let at = |i: usize, j: usize, t: usize| lab[(i * 40 + j) * 120 + t];
        let mut checked = 0;
        for i in 0..40 {
            for j in 0..40 {
                for t in 0..120 {
                    let (x, y, tf) = (i as f64, j as f64, t as f64);
                    // Horizontal distance to the plane, approximated by the
                    // crossing-time difference over tan(dip).
                    let c = s.faults[0].crossing(x, y, s.n);
                    let d = (tf - c.t).abs() / c.half_band * LABEL_HALF_WIDTH;
                    if d < 0.7 {
                        assert_eq!(at(i, j, t), 1, "({i},{j},{t}) d={d}");
                        checked += 1;
                    } else if d > 0.8 {
                        assert_eq!(at(i, j, t), 0, "({i},{j},{t}) d={d}");
                    }
                }
            }
        }
        assert!(checked > 100);
        let info = s.fault_info()[0];
        assert!(info.dip_deg >= 50.0 && info.dip_deg <= 80.0);
        assert!(info.max_throw.abs() >= 6.0 && info.max_throw.abs() <= 25.0);
    }

    #[test]
    fn faults_break_lateral_continuity() {
        // Pairs of traces GAP apart along the survey axis closest to the
        // fault's dip direction, compared sample by sample at equal times.
        // A pair is "across" at time t when exactly one of its samples is in
        // the hanging wall, and both are more than 2 samples from their
        // trace's crossing of the plane (outside the wavelet's smear).
        const GAP: usize = 4;
        let (il, xl, ns) = (40usize, 40usize, 160usize);
        let mut same_all = Vec::new();
        let mut cross_all = Vec::new();
        let mut cross_unfaulted_all = Vec::new();
        for seed in 0..6 {
            let mut sp = spec(il, xl, ns);
            sp.seed = seed;
            sp.snr_db = None;
            sp.faults = 1;
            let s = Survey::new(&sp).unwrap();
            let (faulted, _) = volume(&s);
            sp.faults = 0;
            let (plain, _) = volume(&Survey::new(&sp).unwrap());
            let f = &s.faults[0];
            let along_inline_axis = f.cos.abs() >= f.sin.abs();
            let idx = |i: usize, j: usize, t: usize| (i * xl + j) * ns + t;
            let (mut sa, mut sb, mut ca, mut cb, mut ua, mut ub) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            for i in 0..il {
                for j in 0..xl {
                    let (i2, j2) = if along_inline_axis {
                        (i + GAP, j)
                    } else {
                        (i, j + GAP)
                    };
                    if i2 >= il || j2 >= xl {
                        continue;
                    }
                    let c1 = f.crossing(i as f64, j as f64, s.n).t;
                    let c2 = f.crossing(i2 as f64, j2 as f64, s.n).t;
                    for t in 20..ns - 20 {
                        let tf = t as f64;
                        if (tf - c1).abs() <= 2.0 || (tf - c2).abs() <= 2.0 {
                            continue;
                        }
                        let h1 = s.in_hanging_wall(0, i as f64, j as f64, tf);
                        let h2 = s.in_hanging_wall(0, i2 as f64, j2 as f64, tf);
                        let (p, q) = (idx(i, j, t), idx(i2, j2, t));
                        if h1 == h2 {
                            sa.push(f64::from(faulted[p]));
                            sb.push(f64::from(faulted[q]));
                        } else {
                            ca.push(f64::from(faulted[p]));
                            cb.push(f64::from(faulted[q]));
                            ua.push(f64::from(plain[p]));
                            ub.push(f64::from(plain[q]));
                        }
                    }
                }
            }
            assert!(
                ca.len() > 200,
                "seed {seed}: only {} pairs across",
                ca.len()
            );
            let (same, cross, unf) = (corr(&sa, &sb), corr(&ca, &cb), corr(&ua, &ub));
            eprintln!(
                "seed {seed}: same side {same:.3}, across {cross:.3} ({} pairs), unfaulted {unf:.3}",
                ca.len()
            );
            same_all.push(same);
            cross_all.push(cross);
            cross_unfaulted_all.push(unf);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (same, cross, unf) = (
            mean(&same_all),
            mean(&cross_all),
            mean(&cross_unfaulted_all),
        );
        assert!(same > 0.6, "same-side correlation {same}");
        assert!(unf > 0.6, "unfaulted correlation at the same places {unf}");
        assert!(cross < same - 0.35, "across {cross} vs same side {same}");
        for (k, (&c, &u)) in cross_all.iter().zip(&cross_unfaulted_all).enumerate() {
            assert!(c < u - 0.2, "seed {k}: across {c} vs unfaulted {u}");
        }
    }

    #[test]
    fn measured_snr_matches_request() {
        for snr in [0.0, 10.0, 20.0] {
            let mut sp = spec(20, 24, 200);
            sp.seed = 5;
            sp.snr_db = Some(snr);
            let noisy = volume(&Survey::new(&sp).unwrap()).0;
            sp.snr_db = None;
            let clean = volume(&Survey::new(&sp).unwrap()).0;
            let ps: f64 = clean.iter().map(|&v| f64::from(v).powi(2)).sum();
            let pn: f64 = noisy
                .iter()
                .zip(&clean)
                .map(|(&a, &b)| f64::from(a - b).powi(2))
                .sum();
            let measured = 10.0 * (ps / pn).log10();
            eprintln!("requested {snr} dB, measured {measured:.2} dB");
            assert!(
                (measured - snr).abs() <= 1.5,
                "requested {snr} dB, measured {measured:.2} dB"
            );
        }
        // On a larger survey the power estimate comes from a sub-grid.
        let mut sp = spec(100, 90, 64);
        sp.snr_db = Some(6.0);
        let s = Survey::new(&sp).unwrap();
        let clean = Survey::new(&SynthSpec {
            snr_db: None,
            ..sp.clone()
        })
        .unwrap();
        let (mut ps, mut pn) = (0.0, 0.0);
        let mut a = vec![0f32; s.inline_len()];
        let mut b = vec![0f32; s.inline_len()];
        for i in (0..100).step_by(3) {
            s.inline(i, &mut a);
            clean.inline(i, &mut b);
            for (&x, &y) in a.iter().zip(&b) {
                ps += f64::from(y).powi(2);
                pn += f64::from(x - y).powi(2);
            }
        }
        let measured = 10.0 * (ps / pn).log10();
        eprintln!("100x90x64 survey: requested 6 dB, measured {measured:.2} dB");
        assert!((measured - 6.0).abs() <= 1.5, "measured {measured:.2} dB");
    }

    #[test]
    fn noise_free_amplitudes_are_unit_scale() {
        let mut sp = spec(30, 30, 128);
        sp.snr_db = None;
        let (amp, _) = volume(&Survey::new(&sp).unwrap());
        let peak = amp.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((0.9..=1.3).contains(&peak), "peak {peak}");
        let rms =
            (amp.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / amp.len() as f64).sqrt();
        assert!(rms > 0.05 && rms < 0.6, "rms {rms}");
    }

    /// Frequency of the maximum of the smoothed average power spectrum.
    fn dominant_frequency(peak_hz: f64) -> f64 {
        let ns = 512;
        let dt = 0.004;
        let nf = ns / 2;
        let mut power = vec![0f64; nf + 1];
        for seed in 0..12 {
            let s = Survey::new(&SynthSpec {
                ilines: 4,
                xlines: 4,
                samples: ns,
                seed,
                faults: 0,
                snr_db: None,
                peak_hz,
                dt_us: 4000,
            })
            .unwrap();
            let mut tr = vec![0f32; ns];
            for (i, j) in [(0, 0), (3, 3), (0, 3), (3, 0)] {
                s.trace(i, j, &mut tr);
                for (k, p) in power.iter_mut().enumerate() {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (n, &v) in tr.iter().enumerate() {
                        let ph = -2.0 * PI * (k * n) as f64 / ns as f64;
                        re += f64::from(v) * ph.cos();
                        im += f64::from(v) * ph.sin();
                    }
                    *p += re * re + im * im;
                }
            }
        }
        let df = 1.0 / (ns as f64 * dt);
        let w = (4.0 / df).round() as usize; // +- 4 Hz smoothing
        let smooth: Vec<f64> = (0..=nf)
            .map(|k| {
                let a = k.saturating_sub(w);
                let b = (k + w).min(nf);
                power[a..=b].iter().sum::<f64>() / (b - a + 1) as f64
            })
            .collect();
        let kmax = (1..=nf)
            .max_by(|&a, &b| smooth[a].total_cmp(&smooth[b]))
            .unwrap();
        kmax as f64 * df
    }

    #[test]
    fn dominant_frequency_is_near_peak() {
        for peak in [25.0, 40.0] {
            let f = dominant_frequency(peak);
            eprintln!("peak {peak} Hz: dominant frequency {f:.2} Hz");
            assert!(
                (f - peak).abs() <= 0.15 * peak,
                "peak {peak} Hz, dominant {f} Hz"
            );
        }
    }

    #[test]
    fn single_reflector_gives_the_ricker_wavelet() {
        let mut sp = spec(2, 2, 120);
        sp.snr_db = None;
        sp.faults = 0;
        let mut s = Survey::new(&sp).unwrap();
        s.bumps.clear();
        s.gx = 0.0;
        s.gy = 0.0;
        for pos in [50.0, 50.3, 61.75, 2.5, 117.9] {
            s.tau = vec![pos];
            s.refl = vec![Reflector {
                c: 0.5,
                ..Reflector::default()
            }];
            let mut tr = vec![0f32; 120];
            s.trace(1, 1, &mut tr);
            for (n, &v) in tr.iter().enumerate() {
                let d = n as f64 - pos;
                let expect = if d.abs() <= s.wavelet.half as f64 {
                    0.5 * ricker(25.0, d * 0.004)
                } else {
                    0.0
                };
                assert!(
                    (f64::from(v) - expect).abs() < 2e-5,
                    "reflector at {pos}, sample {n}: {v} vs {expect}"
                );
            }
        }
        // Two reflectors superpose linearly.
        s.tau = vec![40.0, 47.5];
        s.refl = vec![
            Reflector {
                c: 1.0,
                ..Reflector::default()
            },
            Reflector {
                c: -0.7,
                ..Reflector::default()
            },
        ];
        let mut tr = vec![0f32; 120];
        s.trace(0, 0, &mut tr);
        for (n, &v) in tr.iter().enumerate() {
            let (d1, d2) = (n as f64 - 40.0, n as f64 - 47.5);
            let h = s.wavelet.half as f64;
            let mut e = 0.0;
            if d1.abs() <= h {
                e += ricker(25.0, d1 * 0.004);
            }
            if d2.abs() <= h {
                e -= 0.7 * ricker(25.0, d2 * 0.004);
            }
            assert!((f64::from(v) - e).abs() < 3e-5, "sample {n}");
        }
        // The truncated wavelet is negligible where it is cut.
        let h = s.wavelet.half as f64;
        assert!(ricker(25.0, h * 0.004).abs() < 1e-3);
        assert!((ricker(25.0, 0.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn labels_npy_matches_inlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.npy");
        let s = Survey::new(&spec(5, 6, 40)).unwrap();
        s.write_labels_npy(&path).unwrap();
        let arr = crate::npy::read_npy(&path).unwrap();
        assert_eq!(arr.shape, vec![5, 6, 40]);
        assert_eq!(arr.to_u8().unwrap(), volume(&s).1);
        let path = dir.path().join("amp.npy");
        s.write_amplitudes_npy(&path).unwrap();
        let arr = crate::npy::read_npy(&path).unwrap();
        assert_eq!(arr.to_f32().unwrap(), volume(&s).0);
    }

    /// Throughput check, run with
    /// `cargo test --release -p mlp-segy -- --ignored synth_throughput --nocapture`.
    #[test]
    #[ignore]
    fn synth_throughput() {
        let s = Survey::new(&SynthSpec {
            ilines: 400,
            xlines: 400,
            samples: 300,
            faults: 5,
            ..SynthSpec::default()
        })
        .unwrap();
        let start = std::time::Instant::now();
        let mut amp = vec![0f32; s.inline_len()];
        let mut lab = vec![0u8; s.inline_len()];
        let mut checksum = 0f64;
        for i in 0..400 {
            s.inline_with_labels(i, &mut amp, &mut lab);
            checksum += f64::from(amp[i]) + f64::from(lab[i]);
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "400x400x300 ({} MB of float32): {secs:.2} s, {:.0} MB/s (checksum {checksum})",
            400 * 400 * 300 * 4 / 1_000_000,
            192.0 / secs
        );
    }
}
