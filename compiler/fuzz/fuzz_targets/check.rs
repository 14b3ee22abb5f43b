//! Arbitrary bytes through everything `mlp check`, `mlp plan` and `mlp fmt` do: parse,
//! check and plan from a fresh database; and, when the input parses without errors, the
//! formatter, which must either refuse or give a fixed point.
//!
//! The invariants are those of tests/robustness.rs (which runs the same inputs on stable):
//! no panic, no stack overflow, every diagnostic has a documented code and labels inside
//! the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlp_db::{Database, PlanRequest, SourceFile};
use mlp_diagnostics::Diagnostic;

/// The stack the `mlp` binary gives the compiler (compiler/driver/src/main.rs).
const CLI_STACK: usize = 256 << 20;

fuzz_target!(|data: &[u8]| {
    let data = data.to_vec();
    let worker = std::thread::Builder::new()
        .stack_size(CLI_STACK)
        .spawn(move || run(&data))
        .expect("spawn the compiler thread");
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
});

fn run(data: &[u8]) {
    let db = Database::new();
    let file = SourceFile::new(&db, "fuzz.mlp".to_string(), data.to_vec());
    check_all(data.len(), &mlp_db::parse(&db, file).diagnostics);
    let diagnostics = mlp_db::diagnostics(&db, file);
    check_all(data.len(), diagnostics);
    let request = PlanRequest::new(&db, file, Vec::new());
    match mlp_db::plan(&db, request) {
        Ok(_) => assert!(
            !diagnostics.iter().any(|d| d.is_error()),
            "a plan despite errors"
        ),
        Err(errors) => {
            assert!(!errors.is_empty(), "a failed plan without a diagnostic");
            check_all(data.len(), errors);
        }
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if mlp_syntax::parse(text)
        .diagnostics
        .iter()
        .any(|d| d.is_error())
    {
        return;
    }
    if let Ok(once) = mlp_fmt::format_source(text) {
        let twice = mlp_fmt::format_source(&once).expect("the formatter accepts its own output");
        assert_eq!(once, twice, "formatting is not idempotent");
    }
}

fn check_all(len: usize, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        assert!(
            mlp_diagnostics::page(&d.code).is_some(),
            "{} has no page in spec/diagnostics/",
            d.code
        );
        for l in d.labels.iter().filter(|l| l.file.is_none()) {
            assert!(
                l.span.start <= l.span.end && l.span.end as usize <= len,
                "{}: label {:?} outside the file of {len} bytes",
                d.code,
                l.span
            );
        }
    }
}
