//! Per-kernel GPU profiling with timestamp queries, on whatever adapter wgpu finds (Mesa's
//! lavapipe included). Where the adapter does not offer timestamp queries, the tests check the
//! clear "not supported" outcome instead. Without any adapter they print a skip notice and
//! pass, except under `CI=true`.

use mlp_compute::gpu::{GpuBackend, GpuOptions, KernelTime, ProfileMode};
use mlp_compute::op::{Activation, Op};
use mlp_compute::{Backend, Tensor};

fn gpu() -> Option<GpuBackend> {
    match GpuBackend::new(GpuOptions::allow_cpu()) {
        Ok(g) => {
            eprintln!(
                "GPU backend: {} (profiling: {:?})",
                g.describe(),
                g.profiling_support()
            );
            Some(g)
        }
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("no GPU adapter under CI=true: {e}");
            }
            eprintln!("SKIPPED: no wgpu adapter for the GPU backend: {e}");
            None
        }
    }
}

/// A tensor of `data`.
fn tensor(g: &GpuBackend, data: &[f32]) -> Tensor {
    let b = g.alloc(data.len()).unwrap();
    g.upload(b, data).unwrap();
    Tensor::new(b, vec![data.len()])
}

fn calls(p: &[KernelTime], kernel: &str) -> u64 {
    p.iter().find(|k| k.kernel == kernel).map_or(0, |k| k.calls)
}

/// `n` additions `c = a + b` and `relus` ReLUs of `c` (into `d`), recorded, not synced.
fn work(g: &GpuBackend, n: usize, relus: usize) -> (Tensor, Tensor) {
    let len = 4096;
    let a: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
    let b: Vec<f32> = (0..len).map(|i| (i % 5) as f32 * 0.25).collect();
    let (a, b) = (tensor(g, &a), tensor(g, &b));
    let c = Tensor::new(g.alloc(len).unwrap(), vec![len]);
    let d = Tensor::new(g.alloc(len).unwrap(), vec![len]);
    for _ in 0..n {
        g.dispatch(&Op::Add, &[&a, &b], &[&c]).unwrap();
    }
    for _ in 0..relus {
        g.dispatch(&Op::Act(Activation::Relu), &[&c], &[&d])
            .unwrap();
    }
    (c, d)
}

fn expected(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i % 7) as f32 - 3.0 + (i % 5) as f32 * 0.25).max(0.0))
        .collect()
}

/// Enables profiling in `mode`, or checks the clear refusal where the adapter cannot time
/// kernels (then returns false).
fn enable(g: &GpuBackend, mode: Option<ProfileMode>) -> bool {
    let res = match mode {
        None => g.enable_profiling().map(|_| ()),
        Some(m) => g.enable_profiling_as(m),
    };
    match (g.profiling_support(), res) {
        (Ok(best), Ok(())) => {
            assert_eq!(g.profiling(), Some(mode.unwrap_or(best)));
            true
        }
        (Ok(best), Err(e)) => {
            // Only inside-pass timestamps can be missing where profiling works at all.
            assert_eq!(mode, Some(ProfileMode::InsidePasses), "{e}");
            assert_eq!(best, ProfileMode::PassPerDispatch);
            assert!(
                e.to_string().contains("TIMESTAMP_QUERY_INSIDE_PASSES"),
                "{e}"
            );
            false
        }
        (Err(why), res) => {
            let e = res.expect_err("enabling profiling without timestamp queries must fail");
            let msg = e.to_string();
            assert!(
                msg.contains(&why) && msg.contains("timestamp queries"),
                "{msg}"
            );
            assert!(msg.contains(&g.adapter_info().name), "{msg}");
            let again = g
                .profile()
                .expect_err("no profile without timestamps")
                .to_string();
            assert!(again.contains("timestamp queries"), "{again}");
            assert_eq!(g.profiling(), None);
            eprintln!("profiling not supported here, as reported: {msg}");
            false
        }
    }
}

/// Every dispatch is timed under its kernel's file name, in either mode, and profiling
/// changes no result.
#[test]
fn profile_counts_every_dispatch_per_kernel() {
    for mode in [None, Some(ProfileMode::PassPerDispatch)] {
        let Some(g) = gpu() else { return };
        if !enable(&g, mode) {
            continue;
        }
        let (d0, _) = g.stats();
        let (_, d) = work(&g, 3, 2);
        g.sync().unwrap();
        let dispatched = g.stats().0 - d0;
        let p = g.profile().unwrap();
        eprintln!("{mode:?}: {p:?}");
        assert_eq!(calls(&p, "add.wgsl"), 3, "{p:?}");
        assert_eq!(calls(&p, "activation.wgsl"), 2, "{p:?}");
        assert_eq!(p.iter().map(|k| k.calls).sum::<u64>(), dispatched, "{p:?}");
        assert!(p.iter().all(|k| k.kernel.contains(".wgsl")), "{p:?}");
        assert!(p.iter().any(|k| k.total_ns > 0), "{p:?}");
        assert!(
            p.windows(2).all(|w| w[0].total_ns >= w[1].total_ns),
            "{p:?}"
        );
        assert_eq!(g.profile_dropped(), 0);
        assert_eq!(g.download(d.buf).unwrap(), expected(4096));
        // Reading the profile again changes nothing; a reset empties it.
        assert_eq!(g.profile().unwrap(), p);
        g.reset_profile();
        assert_eq!(g.profile().unwrap(), vec![]);
        assert!(g.profiling().is_some(), "a reset keeps profiling on");
    }
}

/// Runs longer than one batch (the backend submits every 1024 dispatches) lose nothing, and
/// a download reads the timestamps as a sync does.
#[test]
fn profile_spans_batches_and_downloads() {
    let Some(g) = gpu() else { return };
    if !enable(&g, None) {
        return;
    }
    let (_, submits0) = g.stats();
    let (_, d) = work(&g, 2500, 1);
    assert_eq!(g.download(d.buf).unwrap(), expected(4096));
    assert!(g.stats().1 - submits0 >= 3, "{:?}", g.stats());
    let p = g.profile().unwrap();
    assert_eq!(calls(&p, "add.wgsl"), 2500, "{p:?}");
    assert_eq!(calls(&p, "activation.wgsl"), 1, "{p:?}");
}

/// A reset forgets work recorded before it, even work not submitted yet, and keeps what
/// follows in the same batch.
#[test]
fn reset_drops_earlier_work_only() {
    let Some(g) = gpu() else { return };
    if !enable(&g, None) {
        return;
    }
    work(&g, 2, 0);
    g.reset_profile();
    work(&g, 3, 1);
    let p = g.profile().unwrap();
    assert_eq!(calls(&p, "add.wgsl"), 3, "{p:?}");
    assert_eq!(calls(&p, "activation.wgsl"), 1, "{p:?}");
}

/// Off by default: no profile, a message saying how to turn it on (or why it cannot be), and
/// the same results.
#[test]
fn profiling_is_off_by_default_and_says_so() {
    if std::env::var_os("MLP_GPU_PROFILE").is_some() {
        eprintln!("SKIPPED: MLP_GPU_PROFILE is set");
        return;
    }
    let Some(g) = gpu() else { return };
    assert_eq!(g.profiling(), None);
    let (_, d) = work(&g, 1, 1);
    assert_eq!(g.download(d.buf).unwrap(), expected(4096));
    let msg = g.profile().unwrap_err().to_string();
    match g.profiling_support() {
        Ok(_) => assert!(
            msg.contains("off") && msg.contains("MLP_GPU_PROFILE"),
            "{msg}"
        ),
        Err(why) => assert!(msg.contains(&why), "{msg}"),
    }
    // Resetting or reading the dropped count with profiling off is harmless.
    g.reset_profile();
    assert_eq!(g.profile_dropped(), 0);
}
