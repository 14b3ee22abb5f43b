//! `mlp check` + `mlp plan` on a 10,000-binding pipeline, minus process start: each
//! measurement starts from a fresh database, as the CLI does.
//!
//! - `check+plan`: parse, check and plan (the end-to-end cost of `mlp check` + `mlp plan`,
//!   with the parse and check shared between them, as in one database);
//! - `check`: parse + check (the `diagnostics` query), what `mlp check` does;
//! - `plan`: the plan query alone, on a database where parse and check are already done
//!   (lowering and cache keys);
//! - `parse`: the parser alone, for the breakdown.
//!
//! Run with `cargo bench -p mlp --bench check_plan`. `MLP_BENCH_WRITE=path` writes the
//! generated file and exits without measuring (benches/cli_10k.sh times the real CLI on it).
//! `MLP_BENCH_BINDINGS=n` changes the size (default 10,000).

mod gen;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use mlp_db::{Database, PlanRequest, SourceFile};
use std::hint::black_box;
use std::time::Duration;

/// The stack the `mlp` binary gives the compiler (src/main.rs).
const CLI_STACK: usize = 256 << 20;

fn bindings() -> usize {
    std::env::var("MLP_BENCH_BINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn check_and_plan(bytes: &[u8]) -> bool {
    let db = Database::new();
    let file = SourceFile::new(&db, "bench.mlp".to_string(), bytes.to_vec());
    let diagnostics = mlp_db::diagnostics(&db, file);
    assert!(
        diagnostics.is_empty(),
        "the generated pipeline must check clean: {:?}",
        diagnostics.first()
    );
    let plan = mlp_db::plan(&db, PlanRequest::new(&db, file, Vec::new()));
    plan.is_ok()
}

fn benches(c: &mut Criterion) {
    let n = bindings();
    let text = gen::pipeline(n);
    let bytes = text.into_bytes();
    assert!(check_and_plan(&bytes), "the generated pipeline must plan");

    let mut g = c.benchmark_group(format!("{n}_bindings"));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(bytes.len() as u64));

    g.bench_function("check+plan", |b| {
        b.iter(|| check_and_plan(black_box(&bytes)))
    });

    g.bench_function("check", |b| {
        b.iter(|| {
            let db = Database::new();
            let file = SourceFile::new(&db, "bench.mlp".to_string(), black_box(&bytes).to_vec());
            mlp_db::diagnostics(&db, file).len()
        })
    });

    g.bench_function("plan", |b| {
        b.iter_batched(
            || {
                let db = Database::new();
                let file = SourceFile::new(&db, "bench.mlp".to_string(), bytes.clone());
                let _ = mlp_db::diagnostics(&db, file);
                let request = PlanRequest::new(&db, file, Vec::new());
                (db, request)
            },
            |(db, request)| {
                let ok = mlp_db::plan(&db, request).is_ok();
                (ok, db) // the database is dropped outside the measurement
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("parse", |b| {
        let text = std::str::from_utf8(&bytes).unwrap();
        b.iter(|| mlp_syntax::parse(black_box(text)).file.items.len())
    });
    g.finish();
}

criterion_group!(check_plan, benches);

fn main() {
    let n = bindings();
    if let Some(path) = std::env::var_os("MLP_BENCH_WRITE") {
        std::fs::write(&path, gen::pipeline(n)).expect("write the generated pipeline");
        eprintln!("wrote {n} bindings to {}", path.to_string_lossy());
        return;
    }
    // The compiler runs on the CLI's stack, as in `mlp`.
    std::thread::Builder::new()
        .stack_size(CLI_STACK)
        .spawn(|| {
            check_plan();
            criterion::Criterion::default()
                .configure_from_args()
                .final_summary();
        })
        .expect("spawn the benchmark thread")
        .join()
        .expect("the benchmark panicked");
}
