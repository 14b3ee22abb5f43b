use std::sync::Arc;
use mlp_compute::cpu::CpuBackend;
use mlp_compute::model::{unet, Act, Head, SegLoss, UNetConfig};
use mlp_compute::train::{Dataset, TrainConfig, Trainer};
use mlp_compute::Backend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn check(name: &str, c: UNetConfig, eps: f32) {
    let g = unet(&c).unwrap();
    let n = 3;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let xs: Vec<f32> = (0..n * 128).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let ts: Vec<f32> = (0..n * 64).map(|_| (rng.random::<f32>() > 0.7) as u8 as f32).collect();
    let be: Arc<dyn Backend> = Arc::new(CpuBackend::new());
    let mut tr = Trainer::new(be, g, TrainConfig { batch_size: n, ..Default::default() }).unwrap();
    let d = Dataset::new(&xs, &ts);
    let (_, grads) = tr.loss_and_gradients(&d).unwrap();
    let mut worst = 0f32;
    let mut wn = String::new();
    for (pn, gv) in &grads {
        let base = tr.param(pn).unwrap();
        for i in 0..gv.len().min(6) {
            let mut p = base.clone();
            p[i] += eps; tr.set_param(pn, &p).unwrap();
            let lp = tr.train_loss(&d).unwrap();
            p[i] = base[i] - eps; tr.set_param(pn, &p).unwrap();
            let lm = tr.train_loss(&d).unwrap();
            tr.set_param(pn, &base).unwrap();
            let num = (lp - lm) / (2.0 * eps);
            let err = (num - gv[i]).abs() / (1e-3 + num.abs().max(gv[i].abs()));
            if err > worst { worst = err; wn = format!("{pn}[{i}] ana {} num {num}", gv[i]); }
        }
    }
    eprintln!("{name} eps {eps}: worst {worst} at {wn}");
}

#[test]
fn probe() {
    let base = UNetConfig { in_channels: 2, out_channels: 1, depth: 1, base_channels: 2, batch_norm: false, head: Head::Sigmoid, height: 8, width: 8, activation: Act::Tanh, dropout: 0.0, loss: SegLoss::Mse };
    for eps in [1e-2, 1e-3] {
        check("d0 nobn mse", UNetConfig { depth: 0, ..base.clone() }, eps);
        check("d1 nobn mse", base.clone(), eps);
        check("d0 bn mse", UNetConfig { depth: 0, batch_norm: true, ..base.clone() }, eps);
        check("d1 bn mse", UNetConfig { batch_norm: true, ..base.clone() }, eps);
        check("d1 nobn bce", UNetConfig { loss: SegLoss::Bce { pos_weight: 2.0 }, ..base.clone() }, eps);
        check("d1 nobn dice", UNetConfig { loss: SegLoss::Dice, ..base.clone() }, eps);
    }
}
