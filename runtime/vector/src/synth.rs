//! Deterministic synthetic embeddings for tests and benchmarks.
//!
//! Real sentence embeddings are clustered and have a low intrinsic dimension; isotropic
//! Gaussian noise in 384 dimensions has neither (and makes every neighbour almost equally far).
//! So vectors here are `W (c_j + s·z) + t·e`: a cluster centre `c_j` and a Gaussian offset `z` in a
//! latent space of `latent` dimensions, mapped by a fixed random matrix `W` into `dim`
//! dimensions, plus a little isotropic noise `e`. Everything comes from a counter-based
//! generator (SplitMix64 of seed and index), so the output depends only on the arguments, not on
//! the thread count.

use rayon::prelude::*;

/// Shape of the synthetic distribution.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub dim: usize,
    /// Latent dimension (intrinsic dimension of the data).
    pub latent: usize,
    /// Number of clusters.
    pub clusters: usize,
    /// Spread of a cluster in latent space (centres are standard normal).
    pub spread: f32,
    /// Isotropic noise added in the full space.
    pub noise: f32,
    pub seed: u64,
}

impl Spec {
    /// A reasonable default for `dim`-dimensional embeddings.
    pub fn new(dim: usize, seed: u64) -> Spec {
        Spec {
            dim,
            latent: dim.clamp(1, 64),
            clusters: 64,
            spread: 0.5,
            noise: 0.05,
            seed,
        }
    }
}

#[inline]
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A standard normal number determined by `(seed, stream, i)`.
fn normal(seed: u64, stream: u64, i: u64) -> f32 {
    let h = splitmix(seed ^ splitmix(stream.wrapping_mul(0xA24B_AED4_963E_E407) ^ splitmix(i)));
    let u1 = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let h2 = splitmix(h);
    let u2 = (h2 >> 11) as f64 / (1u64 << 53) as f64;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` vectors (row-major `n × dim`); `stream` separates independent sets drawn from the same
/// distribution (e.g. 0 for the corpus, 1 for queries).
pub fn clustered(spec: &Spec, n: usize, stream: u64) -> Vec<f32> {
    let (dim, lat) = (spec.dim, spec.latent.max(1));
    let clusters = spec.clusters.max(1);
    // The projection and the centres are shared by all streams.
    let w: Vec<f32> = (0..dim * lat)
        .map(|i| normal(spec.seed, 1_000, i as u64) / (lat as f32).sqrt())
        .collect();
    let centres: Vec<f32> = (0..clusters * lat)
        .map(|i| normal(spec.seed, 1_001, i as u64))
        .collect();
    let mut out = vec![0.0f32; n * dim];
    out.par_chunks_mut(dim.max(1))
        .enumerate()
        .for_each(|(r, row)| {
            let id = (stream << 40) ^ r as u64;
            let c = (splitmix(spec.seed ^ splitmix(id ^ 0x5555)) % clusters as u64) as usize;
            let z: Vec<f32> = (0..lat)
                .map(|j| {
                    centres[c * lat + j]
                        + spec.spread
                            * normal(
                                spec.seed,
                                2 + stream * 2,
                                id.wrapping_mul(lat as u64).wrapping_add(j as u64),
                            )
                })
                .collect();
            for (d, x) in row.iter_mut().enumerate() {
                let wr = &w[d * lat..(d + 1) * lat];
                let mut s = 0.0f32;
                for (a, b) in wr.iter().zip(&z) {
                    s += a * b;
                }
                *x = s + spec.noise
                    * normal(
                        spec.seed,
                        3 + stream * 2,
                        id.wrapping_mul(dim as u64).wrapping_add(d as u64),
                    );
            }
        });
    out
}
