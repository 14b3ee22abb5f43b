//! Temporary experiment harness (to be deleted).
use std::sync::Arc;
use std::time::Instant;
use mlp_compute::cpu::CpuBackend;
use mlp_compute::model::{unet, Act, Head, SegLoss, UNetConfig};
use mlp_compute::train::{Dataset, Optimizer, TrainConfig, Trainer};
use mlp_segy::synth::{Survey, SynthSpec};

fn env(k: &str, d: f64) -> f64 { std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d) }

fn standardise(v: &mut [f32]) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt().max(1e-12);
    for x in v.iter_mut() { *x = ((*x as f64 - mean) / sd) as f32; }
}

fn patches(seeds: std::ops::Range<u64>, ilines: usize, every: usize, size: usize, faults: usize, patch: usize, stride: usize, snr: f64) -> (Vec<f32>, Vec<f32>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for seed in seeds {
        let spec = SynthSpec { ilines, xlines: size, samples: size, seed, faults, snr_db: Some(snr), ..SynthSpec::default() };
        let s = Survey::new(&spec).unwrap();
        let mut amp = vec![0f32; size * size];
        let mut lab = vec![0u8; size * size];
        for i in (0..ilines).step_by(every) {
            s.inline_with_labels(i, &mut amp, &mut lab);
            let mut r = 0;
            while r + patch <= size {
                let mut c = 0;
                while c + patch <= size {
                    for y in 0..patch {
                        let off = (r + y) * size + c;
                        xs.extend_from_slice(&amp[off..off + patch]);
                        ys.extend(lab[off..off + patch].iter().map(|&l| l as f32));
                    }
                    c += stride;
                }
                r += stride;
            }
        }
    }
    standardise(&mut xs);
    (xs, ys)
}

#[test]
#[ignore]
fn exp() {
    let patch = env("PATCH", 32.0) as usize;
    let size = env("SIZE", 64.0) as usize;
    let faults = env("FAULTS", 4.0) as usize;
    let nseeds = env("SEEDS", 4.0) as u64;
    let ilines = env("ILINES", 16.0) as usize;
    let every = env("EVERY", 2.0) as usize;
    let stride = env("STRIDE", 16.0) as usize;
    let snr = env("SNR", 20.0);
    let (xs, ys) = patches(100..100 + nseeds, ilines, every, size, faults, patch, stride, snr);
    let nv = env("VSEEDS", 2.0) as u64; let (vx, vy) = patches(900..900 + nv, 16, 4, size, faults, patch, patch, snr);
    let pf = ys.iter().filter(|&&v| v > 0.5).count() as f64 / ys.len() as f64;
    eprintln!("train {} val {} patches, {:.1}% positive", xs.len() / (patch * patch), vx.len() / (patch * patch), 100.0 * pf);
    let c = UNetConfig {
        in_channels: 1, out_channels: 1, depth: env("DEPTH", 2.0) as usize, base_channels: env("BASE", 8.0) as usize,
        batch_norm: env("BN", 1.0) > 0.0, head: Head::Sigmoid, height: patch, width: patch, activation: Act::Relu,
        dropout: env("DROPOUT", 0.0) as f32,
        loss: SegLoss::BceDice { pos_weight: env("POSW", 3.0) as f32, dice_weight: env("DICEW", 1.0) as f32 },
    };
    let cfg = TrainConfig {
        epochs: env("EPOCHS", 20.0) as usize, batch_size: env("BATCH", 16.0) as usize, lr: env("LR", 2e-3) as f32,
        optimizer: Optimizer::adam(), seed: env("SEED", 1.0) as u64, verbose: true, ..TrainConfig::default()
    };
    let g = unet(&c).unwrap();
    eprintln!("{} params", g.num_trainable());
    let mut t = Trainer::new(Arc::new(CpuBackend::new()), g, cfg).unwrap();
    let st = Instant::now();
    t.fit(&Dataset::new(&xs, &ys), Some(&Dataset::new(&vx, &vy))).unwrap();
    eprintln!("{:.1} s", st.elapsed().as_secs_f64());
    let n = 256.min(xs.len() / (patch * patch)) * patch * patch;
    let e = t.evaluate(&Dataset::new(&xs[..n], &ys[..n])).unwrap();
    eprintln!("train subset (eval mode): loss {} {:?}", e.loss, e.metrics);
    let p = t.predict(&vx).unwrap();
    let pp = p.iter().filter(|&&v| v >= 0.5).count() as f64 / p.len() as f64;
    let vp = vy.iter().filter(|&&v| v >= 0.5).count() as f64 / p.len() as f64;
    eprintln!("val predicted positive {pp:.3}, true {vp:.3}");
}
