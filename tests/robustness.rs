//! Robustness: whatever bytes come in, the compiler answers with diagnostics, never with a
//! panic, a stack overflow or an endless loop.
//!
//! - `mutated_examples_*`: the example pipelines with random edits (deleted, inserted,
//!   duplicated and swapped byte ranges, tokens of the language dropped in anywhere,
//!   truncation, random bytes including invalid UTF-8);
//! - `random_*`: bytes, strings and token soup made from nothing;
//! - the named tests: the bad inputs of the robustness issue, one by one (empty, binary,
//!   invalid UTF-8, 10 MB files, deep nesting, long operator chains, ...).
//!
//! Every run goes through the same queries as `mlp check` and `mlp plan` (parse, check,
//! plan), and every diagnostic must have a code with a page in spec/diagnostics/ and labels
//! whose spans lie inside the file. The same inputs drive the cargo-fuzz target in
//! compiler/fuzz/ on nightly.

use mlp_db::{Database, PlanRequest, SourceFile};
use mlp_diagnostics::{Diagnostic, Severity};
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------ harness

/// What one run of the compiler gave.
struct Outcome {
    diagnostics: Vec<Diagnostic>,
    plan: Result<(), Vec<Diagnostic>>,
}

impl Outcome {
    fn codes(&self) -> Vec<&str> {
        self.diagnostics.iter().map(|d| d.code.as_str()).collect()
    }
    fn has(&self, code: &str) -> bool {
        self.diagnostics.iter().any(|d| d.code == code)
    }
    fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
    fn plan_codes(&self) -> Vec<&str> {
        match &self.plan {
            Ok(()) => vec![],
            Err(ds) => ds.iter().map(|d| d.code.as_str()).collect(),
        }
    }
}

/// Runs parse + check (`diagnostics`) and plan on `bytes` from a fresh database, and checks
/// the invariants every diagnostic must keep. Panics (fails the test) on any violation.
fn compile(bytes: &[u8], overrides: Vec<(String, String)>) -> Outcome {
    let bytes = bytes.to_vec();
    on_cli_stack(move || compile_here(&bytes, overrides))
}

/// The stack the `mlp` binary gives the compiler (compiler/driver/src/main.rs): the
/// compiler may rely on it, so the suite runs the queries on a thread with the same
/// stack, not on the test harness's 2 MiB one. A panic in the thread fails the test with
/// its own message; a stack overflow aborts the whole test binary.
const CLI_STACK: usize = 256 << 20;

fn on_cli_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    on_stack(CLI_STACK, f)
}

fn on_stack<T: Send + 'static>(bytes: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .stack_size(bytes)
        .spawn(f)
        .expect("spawn a compiler thread");
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn compile_here(bytes: &[u8], overrides: Vec<(String, String)>) -> Outcome {
    let db = Database::new();
    let file = SourceFile::new(&db, "robustness/input.mlp".to_string(), bytes.to_vec());
    // The parse query on its own first, as the formatter and the LSP use it.
    let parsed = mlp_db::parse(&db, file);
    check_all(bytes.len(), &parsed.diagnostics, "parse");
    let diagnostics = mlp_db::diagnostics(&db, file).clone();
    check_all(bytes.len(), &diagnostics, "diagnostics");
    let no_overrides = overrides.is_empty();
    let request = PlanRequest::new(&db, file, overrides);
    let plan = match mlp_db::plan(&db, request) {
        Ok(plan) => {
            // A plan that was made must also serialize (it is what `mlp plan` prints).
            serde_json::to_string(plan).expect("a plan serializes to JSON");
            Ok(())
        }
        Err(ds) => {
            assert!(!ds.is_empty(), "plan failed without a diagnostic");
            check_all(bytes.len(), ds, "plan");
            assert!(
                ds.iter().all(|d| d.severity == Severity::Error),
                "plan failed on a warning: {ds:#?}"
            );
            Err(ds.clone())
        }
    };
    // An error in the file's diagnostics stops the plan (with the parameters' defaults;
    // an override may legitimately fix a value that the defaults make wrong).
    if no_overrides && diagnostics.iter().any(|d| d.is_error()) {
        assert!(
            plan.is_err(),
            "errors {:?} but a plan was made",
            codes(&diagnostics)
        );
    }
    Outcome { diagnostics, plan }
}

fn codes(ds: &[Diagnostic]) -> Vec<&str> {
    ds.iter().map(|d| d.code.as_str()).collect()
}

fn check_all(len: usize, ds: &[Diagnostic], query: &str) {
    for d in ds {
        check_diagnostic(len, d, query);
    }
}

/// Every diagnostic has a documented code and labels inside the file.
fn check_diagnostic(len: usize, d: &Diagnostic, query: &str) {
    assert!(
        mlp_diagnostics::page(&d.code).is_some(),
        "{query}: diagnostic code {} has no page in spec/diagnostics/ ({:?})",
        d.code,
        d.message
    );
    assert!(
        !d.message.is_empty(),
        "{query}: {} has an empty message",
        d.code
    );
    for l in &d.labels {
        if l.file.is_some() {
            continue; // points into another file (a stdlib signature)
        }
        assert!(
            l.span.start <= l.span.end && (l.span.end as usize) <= len,
            "{query}: {} has a label {:?} outside the file of {len} bytes: {d:#?}",
            d.code,
            l.span
        );
    }
}

/// The example pipelines, read once.
fn examples() -> &'static [(String, Vec<u8>)] {
    static EXAMPLES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).expect("examples/ exists").flatten() {
            let p = e.path().join("pipeline.mlp");
            if let Ok(bytes) = std::fs::read(&p) {
                out.push((p.display().to_string(), bytes));
            }
        }
        out.sort();
        assert!(
            !out.is_empty(),
            "no examples/*/pipeline.mlp found in {}",
            dir.display()
        );
        out
    })
}

/// Tokens of the language (and a few near misses) that mutations drop into files.
#[rustfmt::skip]
const VOCAB: &[&str] = &[
    // keywords
    "import", "pipeline", "fn", "op", "let", "output", "deploy", "schedule", "true", "false",
    "as",
    // punctuation and operators
    "(", ")", "[", "]", "{", "}", ",", ":", ".", "->", "=", "==", "!=", "<", "<=", ">", ">=",
    "+", "-", "*", "/", "!", "&&", "||", "@", "\"", "//", "///", "//!", "\n", "\t", "\r\n",
    " ", "_", "<T>",
    // numbers and quantities
    "0", "1", "-1", "32", "1e-3", "2.5E+4", "1_000_000", "99999999999999999999", "1e999",
    "0.", "4 ms", "4ms", "500 ms", "16 GiB", "256 tokens", "100/s", "5/min", "10 %", "25 Hz",
    "12.5 m", "1 d", "1 w", "3 kHz",
    // units on their own
    "ms", "s", "min", "h", "d", "w", "Hz", "kHz", "GiB", "MB", "B", "bytes", "%", "tokens",
    "chars", "m", "km", "ft",
    // strings
    "\"out/x.npy\"", "\"out/x.sgy\"", "\"out/x.csv\"", "\"a\\tb\\n\"", "\"\\u{1F600}\"",
    "\"\\u{110000}\"", "\"\\q\"", "\"unterminated", "\"0 6 1 * *\"",
    // names from the standard library and the examples
    "seismic", "nn", "vector", "table", "text", "embed", "forecast", "serve", "tracking", "io",
    "core", "segy", "synthetic", "traces", "patches", "stitch", "agc", "bandpass",
    "rms_normalize", "hnsw", "retrieve", "exact", "dense", "relu", "adam", "mse", "train",
    "autoencoder", "unet", "csv", "derive", "series", "lag", "theta", "every", "cron",
    "secret", "survey", "volume", "cube", "dim", "seed", "fit", "index", "x", "self",
    // types
    "Int", "Float", "Str", "Path", "Bool", "Volume[il, xl, t]", "Traces[n, t]",
    "Tensor[1, 128, 128]", "Index[32]", "Table{month: Date}", "[Layer]", "Duration",
    // attributes
    "@version(2)", "@device(\"gpu\")", "@resources(memory: 4 GiB)",
    // non-ASCII and control characters
    "é", "∞", "😀", "\u{feff}", "\u{0}", "\u{7f}", "\u{2028}",
];

#[derive(Clone, Debug)]
enum Mutation {
    Delete { at: usize, len: usize },
    InsertBytes { at: usize, bytes: Vec<u8> },
    InsertToken { at: usize, token: usize },
    InsertTokens { at: usize, tokens: Vec<usize> },
    Duplicate { from: usize, len: usize, to: usize },
    Swap { a: usize, b: usize, len: usize },
    Overwrite { at: usize, byte: u8 },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<usize>();
    prop_oneof![
        3 => (pos, 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        2 => (pos, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::InsertBytes { at, bytes }),
        4 => (pos, 0..VOCAB.len()).prop_map(|(at, token)| Mutation::InsertToken { at, token }),
        2 => (pos, prop::collection::vec(0..VOCAB.len(), 1..12))
            .prop_map(|(at, tokens)| Mutation::InsertTokens { at, tokens }),
        2 => (pos, 1usize..256, pos).prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
        2 => (pos, pos, 1usize..64).prop_map(|(a, b, len)| Mutation::Swap { a, b, len }),
        2 => (pos, any::<u8>()).prop_map(|(at, byte)| Mutation::Overwrite { at, byte }),
        1 => pos.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    let n = buf.len();
    let at = |x: usize| if n == 0 { 0 } else { x % (n + 1) };
    match m {
        Mutation::Delete { at: a, len } => {
            let s = at(*a);
            let e = (s + len).min(n);
            buf.drain(s..e);
        }
        Mutation::InsertBytes { at: a, bytes } => {
            let s = at(*a);
            buf.splice(s..s, bytes.iter().copied());
        }
        Mutation::InsertToken { at: a, token } => {
            let s = at(*a);
            buf.splice(s..s, VOCAB[*token].bytes());
        }
        Mutation::InsertTokens { at: a, tokens } => {
            let s = at(*a);
            let text: Vec<u8> = tokens
                .iter()
                .flat_map(|t| format!("{} ", VOCAB[*t]).into_bytes())
                .collect();
            buf.splice(s..s, text);
        }
        Mutation::Duplicate { from, len, to } => {
            let s = at(*from);
            let e = (s + len).min(n);
            let chunk = buf[s..e].to_vec();
            let t = at(*to);
            buf.splice(t..t, chunk);
        }
        Mutation::Swap { a, b, len } => {
            if n == 0 {
                return;
            }
            let (mut x, mut y) = (at(*a).min(n - 1), at(*b).min(n - 1));
            if x > y {
                std::mem::swap(&mut x, &mut y);
            }
            // Two non-overlapping ranges [x, x+l) and [y, y+l).
            let l = (*len).min(y - x).min(n - y);
            if l == 0 {
                return;
            }
            let first = buf[x..x + l].to_vec();
            let second = buf[y..y + l].to_vec();
            buf[x..x + l].copy_from_slice(&second);
            buf[y..y + l].copy_from_slice(&first);
        }
        Mutation::Overwrite { at: a, byte } => {
            if n > 0 {
                let i = at(*a).min(n - 1);
                buf[i] = *byte;
            }
        }
        Mutation::Truncate { at: a } => {
            let s = at(*a);
            buf.truncate(s);
        }
    }
}

/// Overrides a plan may be asked for: valid, ill-typed, unknown.
const OVERRIDES: &[(&str, &str)] = &[
    ("dim", "64"),
    ("seed", "x"),
    ("horizon", "-1"),
    ("patch", "100"),
    ("docs", "\"elsewhere\""),
    ("nosuch", "1"),
    ("dim", ""),
    ("dim", "99999999999999999999999"),
];

fn overrides() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(0..OVERRIDES.len(), 0..2).prop_map(|ix| {
        ix.into_iter()
            .map(|i| (OVERRIDES[i].0.to_string(), OVERRIDES[i].1.to_string()))
            .collect()
    })
}

/// A mutated example: which example, and the edits.
fn mutated_example() -> impl Strategy<Value = Vec<u8>> {
    (0..examples().len(), prop::collection::vec(mutation(), 1..8)).prop_map(|(i, ms)| {
        let mut buf = examples()[i].1.clone();
        for m in &ms {
            apply(&mut buf, m);
        }
        buf
    })
}

/// Token soup: words of the language in random order.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            0..VOCAB.len(),
            prop::sample::select(vec![" ", "", "\n", "  "]),
        ),
        0..300,
    )
    .prop_map(|ts| {
        ts.into_iter()
            .flat_map(|(t, sep)| format!("{}{sep}", VOCAB[t]).into_bytes())
            .collect()
    })
}

/// A skeleton pipeline with a random body of token soup: the soup gets past the item
/// splitter and into the statement parser and the checker more often.
fn soup_in_pipeline() -> impl Strategy<Value = Vec<u8>> {
    (token_soup(), 0..examples().len()).prop_map(|(soup, i)| {
        let header: Vec<u8> = examples()[i]
            .1
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"import"))
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect();
        let mut out = header;
        out.extend_from_slice(b"pipeline p(dim: Int = 32, seed: Int = 7) {\n  let survey = synthetic(seed: seed)\n  let x = ");
        out.extend_from_slice(&soup);
        out.extend_from_slice(b"\n  output x -> \"out/x.npy\"\n}\n");
        out
    })
}

/// An example with whitespace and comments added next to existing whitespace: mostly
/// still valid, so it reaches the formatter (comment placement, blank lines, long lines).
fn reflowed_example() -> impl Strategy<Value = Vec<u8>> {
    const TRIVIA: &[&str] = &[
        " ",
        "\n",
        "\n\n",
        "\t",
        "  // note\n",
        "\n/// doc\n",
        "\n// c\n\n",
        "\r\n",
    ];
    (
        0..examples().len(),
        prop::collection::vec((any::<usize>(), 0..TRIVIA.len()), 1..12),
    )
        .prop_map(|(i, edits)| {
            let mut buf = examples()[i].1.clone();
            for (at, t) in edits {
                let spaces: Vec<usize> = (0..buf.len())
                    .filter(|&k| buf[k] == b' ' || buf[k] == b'\n')
                    .collect();
                if let Some(&k) = spaces.get(at % spaces.len().max(1)) {
                    buf.splice(k..k, TRIVIA[t].bytes());
                }
            }
            buf
        })
}

/// Formats a file that parses cleanly; if the formatter accepts it, formatting again must
/// change nothing, and the result must still parse without errors.
fn format_roundtrip(bytes: &[u8]) {
    let bytes = bytes.to_vec();
    on_cli_stack(move || format_roundtrip_here(&bytes))
}

fn format_roundtrip_here(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
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
        assert!(
            !mlp_syntax::parse(&once)
                .diagnostics
                .iter()
                .any(|d| d.is_error()),
            "formatted text has syntax errors"
        );
    }
}

/// `cases` per property, unless `PROPTEST_CASES` asks for more (a longer local hunt).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Keep failures out of the source tree; the seed is printed on failure anyway.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// --------------------------------------------------------------------------- proptests

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_examples_never_panic(bytes in mutated_example(), ov in overrides()) {
        compile(&bytes, ov);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        compile(&bytes, vec![]);
    }

    #[test]
    fn random_strings_never_panic(text in "\\PC{0,400}") {
        compile(text.as_bytes(), vec![]);
    }

    #[test]
    fn random_ascii_never_panic(text in "[ -~\\n\\t]{0,400}") {
        compile(text.as_bytes(), vec![]);
    }

    #[test]
    fn token_soup_never_panics(bytes in token_soup()) {
        compile(&bytes, vec![]);
    }

    #[test]
    fn soup_inside_a_pipeline_never_panics(bytes in soup_in_pipeline(), ov in overrides()) {
        compile(&bytes, ov);
    }

    #[test]
    fn formatter_never_panics_on_mutated_examples(bytes in mutated_example()) {
        format_roundtrip(&bytes);
    }

    #[test]
    fn formatter_never_panics_on_reflowed_examples(bytes in reflowed_example()) {
        format_roundtrip(&bytes);
    }

    #[test]
    fn formatter_never_panics_on_soup(bytes in soup_in_pipeline()) {
        format_roundtrip(&bytes);
    }
}

// ------------------------------------------------------------------------ named inputs

/// Time budget for the big inputs. Generous in debug builds (the compiler crates are not
/// optimized there); the point is "finishes", not a benchmark (see compiler/driver/benches).
fn budget(release: u64) -> Duration {
    Duration::from_secs(if cfg!(debug_assertions) {
        release * 15
    } else {
        release
    })
}

fn timed(bytes: &[u8]) -> (Outcome, Duration) {
    let t = Instant::now();
    let o = compile(bytes, vec![]);
    (o, t.elapsed())
}

#[test]
fn examples_compile_clean() {
    for (path, bytes) in examples() {
        let o = compile(bytes, vec![]);
        assert_eq!(o.errors(), 0, "{path}: {:?}", o.codes());
        assert!(o.plan.is_ok(), "{path}: {:?}", o.plan_codes());
    }
}

#[test]
fn empty_file() {
    for text in [
        "",
        " ",
        "\n\n\n",
        "   \t\r\n",
        "// only a comment\n",
        "/// a dangling doc comment\n",
    ] {
        let o = compile(text.as_bytes(), vec![]);
        assert!(
            o.diagnostics
                .iter()
                .all(|d| d.severity == Severity::Warning),
            "{text:?}: {:?}",
            o.codes()
        );
        assert!(
            o.diagnostics.iter().all(|d| d.code == "W0001"),
            "{text:?}: {:?}",
            o.codes()
        );
        assert!(o.diagnostics.len() <= 1, "{text:?}: {:?}", o.codes());
        assert_eq!(o.plan_codes(), ["E0302"], "{text:?}");
    }
    // Only imports: nothing to plan either.
    let o = compile(b"import nn.dense\n", vec![]);
    assert_eq!(o.plan_codes(), ["E0302"]);
}

#[test]
fn binary_garbage() {
    // Deterministic pseudo-random bytes (xorshift), with and without NULs.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut garbage = Vec::with_capacity(1 << 16);
    for _ in 0..(1 << 16) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        garbage.push(x as u8);
    }
    let o = compile(&garbage, vec![]);
    assert!(o.has("E0004"), "{:?}", o.codes());
    assert!(o.plan.is_err());

    // An ELF header: valid UTF-8 up to a NUL.
    let o = compile(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", vec![]);
    assert!(o.has("E0004"), "{:?}", o.codes());

    // A NUL in the middle of an otherwise valid pipeline.
    let mut p = examples()[0].1.clone();
    let mid = p.len() / 2;
    p.insert(mid, 0);
    let o = compile(&p, vec![]);
    assert!(o.has("E0004"), "{:?}", o.codes());

    // Printable garbage without NULs: syntax errors, not E0004.
    let printable: Vec<u8> = garbage.iter().map(|b| b' ' + b % 95).collect();
    let o = compile(&printable, vec![]);
    assert!(o.errors() > 0, "{:?}", o.codes());
}

#[test]
fn invalid_utf8() {
    for bytes in [
        &b"\xff"[..],
        b"pipeline p() {\n  let x = \"\xc3\x28\"\n}\n",
        b"\xed\xa0\x80",                       // a UTF-16 surrogate
        b"\xf4\x90\x80\x80",                   // beyond U+10FFFF
        b"pipeline p() { let x = 1 }\xe2\x82", // truncated at the end
        b"\xef\xbb\xbf\xfe\xff",               // BOM, then garbage
    ] {
        let o = compile(bytes, vec![]);
        assert!(o.has("E0004"), "{bytes:?}: {:?}", o.codes());
        assert!(
            o.plan_codes().contains(&"E0004"),
            "{bytes:?}: {:?}",
            o.plan_codes()
        );
    }
    // Every example, with one byte made invalid somewhere.
    for (path, bytes) in examples() {
        for at in [0, bytes.len() / 3, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[at] = 0xff;
            let o = compile(&b, vec![]);
            assert!(o.has("E0004"), "{path} @ {at}: {:?}", o.codes());
        }
    }
}

/// Imports shared by the big generated files.
const HEADER: &str = "import seismic.{synthetic, agc, bandpass, rms_normalize}\n\
                      import vector.{hnsw, retrieve}\n\
                      import nn.{autoencoder, dense, relu, adam, mse, train}\n\n";

/// A valid pipeline with a unique name.
fn small_pipeline(i: usize) -> String {
    format!(
        "/// Pipeline {i}.\npipeline p{i}(dim: Int = 32, seed: Int = {i}) {{\n  \
           let survey = synthetic(il: 16, xl: 16, samples: 64, seed: seed)\n  \
           let filtered = bandpass(survey.volume, low: 8 Hz, high: 60 Hz)\n  \
           let traces = rms_normalize(agc(filtered, window: 250 ms).traces)\n  \
           let fit = train(autoencoder(encoder: [dense(64), relu, dense(dim)]), on: traces, epochs: 2, optimizer: adam(lr: 1e-3), loss: mse, seed: seed)\n  \
           let codes = fit.encode(traces)\n  \
           let index = hnsw(codes, m: 16)\n  \
           let near = retrieve(index, codes, k: 4)\n  \
           output index -> \"out/p{i}.index\"\n  \
           output near -> \"out/p{i}.jsonl\"\n}}\n\n"
    )
}

fn valid_pipelines(bytes: usize) -> (String, usize) {
    let mut text = String::from(HEADER);
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(&small_pipeline(i));
        i += 1;
    }
    (text, i)
}

#[test]
fn ten_megabytes_of_valid_pipelines() {
    let (text, n) = valid_pipelines(10 << 20);
    let (o, took) = timed(text.as_bytes());
    eprintln!("10 MB, {n} valid pipelines, check + plan: {took:?}");
    assert!(took < budget(20), "took {took:?}");
    assert_eq!(o.errors(), 0, "{:?}", &o.codes()[..o.codes().len().min(10)]);
    assert!(o.plan.is_ok(), "{:?}", o.plan_codes());
}

#[test]
fn ten_megabytes_of_repeated_examples() {
    // The examples verbatim, again and again: every import, fn and pipeline is a duplicate.
    let mut bytes = Vec::new();
    while bytes.len() < 10 << 20 {
        for (_, b) in examples() {
            bytes.extend_from_slice(b);
            bytes.push(b'\n');
        }
    }
    let (o, took) = timed(&bytes);
    eprintln!(
        "10 MB of repeated examples: {took:?}, {} diagnostics",
        o.diagnostics.len()
    );
    assert!(took < budget(20), "took {took:?}");
    assert!(
        o.has("E0103"),
        "{:?}",
        &o.codes()[..o.codes().len().min(10)]
    );
    assert!(o.plan.is_err());
}

#[test]
fn ten_megabyte_expression_line() {
    let mut text = String::from("pipeline p() {\n  let x = 1");
    while text.len() < 10 << 20 {
        text.push_str(" + 1");
    }
    text.push_str("\n}\n");
    let (o, took) = timed(text.as_bytes());
    eprintln!("10 MB expression line: {took:?}, {:?}", o.codes());
    assert!(took < budget(20), "took {took:?}");
    assert!(o.has("E0003"), "{:?}", o.codes());
}

/// One line holding a long list of op calls: wide rather than deep. Every call is an
/// anonymous node of the same binding (`p.x/agc`, `p.x/agc#2`, ...).
fn list_of_calls(n: usize) -> String {
    format!(
        "import seismic.agc\npipeline p() {{\n  let x = [{}]\n}}\n",
        "agc(1), ".repeat(n)
    )
}

#[test]
fn thousand_calls_in_one_list() {
    let (o, took) = timed(list_of_calls(1_000).as_bytes());
    eprintln!("1,000 calls in one list: {took:?}");
    assert!(took < budget(2), "took {took:?}");
    assert_eq!(o.errors(), 0, "{:?}", o.codes());
}

#[test]
fn ten_megabyte_line_of_calls() {
    let n = (10 << 20) / "agc(1), ".len();
    let (o, took) = timed(list_of_calls(n).as_bytes());
    eprintln!(
        "10 MB list line: {took:?}, {} diagnostics",
        o.diagnostics.len()
    );
    assert!(took < budget(20), "took {took:?}");
}

#[test]
fn over_the_size_limit() {
    let mut bytes = b"pipeline p() {}\n".to_vec();
    bytes.resize(mlp_db::MAX_FILE_BYTES + 1, b' ');
    let (o, took) = timed(&bytes);
    assert!(took < budget(2), "took {took:?}");
    assert!(o.has("E0005"), "{:?}", o.codes());
    assert_eq!(o.plan_codes(), ["E0005"]);
}

fn in_pipeline(expr: &str) -> String {
    format!("pipeline p() {{\n  let x = {expr}\n  output x -> \"out/x.json\"\n}}\n")
}

#[test]
fn ten_thousand_nested_parentheses() {
    let n = 10_000;
    for expr in [
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        "(".repeat(n), // unclosed
        format!("{}1", "(".repeat(n)),
        ")".repeat(n),                                   // unopened
        format!("{}1{}", "f(".repeat(n), ")".repeat(n)), // nested calls
    ] {
        let o = compile(in_pipeline(&expr).as_bytes(), vec![]);
        assert!(o.errors() > 0, "{:?}", o.codes());
        if expr.starts_with('(') || expr.starts_with("f(") {
            assert!(o.has("E0003"), "{:?}", o.codes());
        }
    }
}

#[test]
fn ten_thousand_nested_brackets() {
    let n = 10_000;
    for text in [
        in_pipeline(&"[".repeat(n)),
        in_pipeline(&format!("{}1{}", "[".repeat(n), "]".repeat(n))),
        in_pipeline(&format!("{}a: 1{}", "{a: ".repeat(n), "}".repeat(n))),
        "[".repeat(n),
        "{".repeat(n),
        format!(
            "pipeline p() {{ let x: {}Int{} = 1 }}",
            "[".repeat(n),
            "]".repeat(n)
        ), // nested list types
        format!("pipeline p(x: {}Int{}) {{}}", "[".repeat(n), "]".repeat(n)),
        "([{".repeat(n),
    ] {
        let o = compile(text.as_bytes(), vec![]);
        assert!(o.has("E0003"), "{:?}", o.codes());
    }
}

#[test]
fn hundred_thousand_term_sum() {
    let expr = vec!["1"; 100_000].join(" + ");
    let (o, took) = timed(in_pipeline(&expr).as_bytes());
    assert!(took < budget(5), "took {took:?}");
    assert!(o.has("E0003"), "{:?}", o.codes());
    // Just under and just over the limit.
    let limit = mlp_syntax::MAX_EXPR_PARTS;
    let under = vec!["1"; limit / 2].join(" + ");
    let o = compile(in_pipeline(&under).as_bytes(), vec![]);
    assert!(!o.has("E0003"), "{:?}", o.codes());
    let over = vec!["1"; limit].join(" + ");
    let o = compile(in_pipeline(&over).as_bytes(), vec![]);
    assert!(o.has("E0003"), "{:?}", o.codes());
    // Mixed precedence levels, as a long chain.
    let mixed: String = (0..100_000)
        .map(|i| ["1", " * ", "2", " - ", "3", " / ", "4", " + "][i % 8])
        .collect::<String>()
        + "5";
    let o = compile(in_pipeline(&mixed).as_bytes(), vec![]);
    assert!(o.has("E0003"), "{:?}", o.codes());
}

/// 60 nested groups, each the left operand of a 511-term sum (and of 1,000 `!`): a tree
/// ~30,000 levels deep although no expression has more than MAX_EXPR_PARTS parts and no
/// bracket nests deeper than 64. MAX_TREE_DEPTH refuses it (E0003) instead of letting a
/// recursive pass run off the stack.
#[test]
fn deepest_tree_within_the_limits() {
    let mut sum = String::from("1");
    let mut not = String::from("true");
    for _ in 0..60 {
        sum = format!("({sum}){}", " + 1".repeat(511));
        not = format!("({}{not})", "!".repeat(1_000));
    }
    for expr in [sum, not] {
        let o = compile(in_pipeline(&expr).as_bytes(), vec![]);
        assert!(o.has("E0003"), "{:?}", o.codes());
    }
    // Ten such levels stay within the limit and check normally.
    let mut sum = String::from("1");
    for _ in 0..6 {
        sum = format!("({sum}){}", " + 1".repeat(100));
    }
    let o = compile(in_pipeline(&sum).as_bytes(), vec![]);
    assert!(!o.has("E0003"), "{:?}", o.codes());
}

#[test]
fn ten_thousand_unary_minus() {
    for (prefix, operand) in [
        ("-", "1"),
        ("-", "x"),
        ("!", "true"),
        ("- ", "1.5"),
        ("-", "4 ms"),
    ] {
        let expr = format!("{}{operand}", prefix.repeat(10_000));
        let o = compile(in_pipeline(&expr).as_bytes(), vec![]);
        assert!(o.has("E0003"), "{prefix:?}{operand}: {:?}", o.codes());
    }
    // Under the limit: fine (an even number of minus signs is the literal itself).
    let expr = format!("{}1", "-".repeat(1000));
    let o = compile(in_pipeline(&expr).as_bytes(), vec![]);
    assert!(!o.has("E0003"), "{:?}", o.codes());
}

#[test]
fn hundred_thousand_member_chain() {
    let expr = format!("a{}", ".b".repeat(100_000));
    let (o, took) = timed(in_pipeline(&expr).as_bytes());
    assert!(took < budget(5), "took {took:?}");
    assert!(o.errors() > 0, "{:?}", o.codes());
    let expr = format!("synthetic(){}", ".volume.traces".repeat(50_000));
    let o = compile(in_pipeline(&expr).as_bytes(), vec![]);
    assert!(o.errors() > 0, "{:?}", o.codes());
}

#[test]
fn thousand_step_member_chain() {
    // Well below the sizes that overflow: shows the chain itself is handled.
    let expr = format!("a{}", ".b".repeat(1_000));
    let o = compile(in_pipeline(&expr).as_bytes(), vec![]);
    assert!(o.has("E0105"), "{:?}", o.codes());
}

#[test]
fn hundred_thousand_call_chains() {
    let n = 100_000;
    for expr in [
        format!("x{}", "()".repeat(n)),                     // call chain
        format!("x{}", ".f()".repeat(n / 2)),               // method chain
        format!("derive(t){}", "{ a = 1 }".repeat(n / 10)), // column blocks
    ] {
        let (o, took) = timed(in_pipeline(&expr).as_bytes());
        assert!(took < budget(5), "took {took:?}");
        assert!(o.errors() > 0, "{:?}", o.codes());
    }
}

#[test]
fn unterminated_string() {
    for text in [
        "pipeline p() {\n  let x = \"abc\n}\n",
        "\"",
        "pipeline p() {\n  output x -> \"out/x.npy\n}\n",
        "import seismic.{agc}\npipeline p() {\n  let x = agc(\"abc\\\")\n}\n", // escaped quote
        "pipeline p() {\n  let x = \"abc\\",                                   // backslash at EOF
        "pipeline p() {\n  let x = \"\\u{1F600\n}\n",
    ] {
        let o = compile(text.as_bytes(), vec![]);
        assert!(o.has("E0002"), "{text:?}: {:?}", o.codes());
    }
}

#[test]
fn unknown_imports() {
    let o = compile(b"import nosuch.{a, b}\npipeline p() {}\n", vec![]);
    assert!(o.has("E0101"), "{:?}", o.codes());
    let o = compile(b"import seismik\npipeline p() {}\n", vec![]);
    assert!(o.has("E0101"), "{:?}", o.codes());
    let o = compile(b"import a.b.c.d.e\npipeline p() {}\n", vec![]);
    assert!(o.has("E0101"), "{:?}", o.codes());
    // A known module without the name: E0102.
    let o = compile(b"import nn.{dense, nosuch}\npipeline p() {}\n", vec![]);
    assert!(o.has("E0102"), "{:?}", o.codes());
    assert!(o.plan.is_err());
}

#[test]
fn duplicate_names() {
    // Two items of one file.
    let o = compile(b"pipeline p() {}\npipeline p() {}\n", vec![]);
    assert!(o.has("E0103"), "{:?}", o.codes());
    // An import clashing with another import, and with an item.
    let o = compile(b"import nn.{dense, dense}\npipeline p() {}\n", vec![]);
    assert!(o.has("E0103"), "{:?}", o.codes());
    let o = compile(
        b"import nn.dense\nfn dense() -> Int { 1 }\npipeline p() {}\n",
        vec![],
    );
    assert!(o.has("E0103"), "{:?}", o.codes());
    // A parameter declared twice.
    let o = compile(b"pipeline p(a: Int = 1, a: Int = 2) {}\n", vec![]);
    assert!(o.has("E0103"), "{:?}", o.codes());
    // A binding bound twice, and a binding named like a parameter.
    let o = compile(b"pipeline p() {\n  let a = 1\n  let a = 2\n}\n", vec![]);
    assert!(o.has("E0104"), "{:?}", o.codes());
    let o = compile(b"pipeline p(a: Int = 1) {\n  let a = 2\n}\n", vec![]);
    assert!(o.has("E0104"), "{:?}", o.codes());
    // Ten thousand bindings of one name.
    let body: String = (0..10_000).map(|i| format!("  let a = {i}\n")).collect();
    let (o, took) = timed(format!("pipeline p() {{\n{body}}}\n").as_bytes());
    assert!(took < budget(5), "took {took:?}");
    assert!(o.has("E0104"), "{:?}", &o.codes()[..5]);
}

#[test]
fn cycles() {
    let o = compile(
        b"import seismic.agc\npipeline p() {\n  let a = agc(b)\n  let b = agc(a)\n}\n",
        vec![],
    );
    assert!(o.has("E0106"), "{:?}", o.codes());
    let o = compile(b"pipeline p() {\n  let a = a\n}\n", vec![]);
    assert!(o.has("E0106"), "{:?}", o.codes());
    // A long cycle: a0 -> a1 -> ... -> a9999 -> a0.
    let n = 10_000;
    let body: String = (0..n)
        .map(|i| format!("  let a{i} = agc(a{})\n", (i + 1) % n))
        .collect();
    let (o, took) = timed(format!("import seismic.agc\npipeline p() {{\n{body}}}\n").as_bytes());
    assert!(took < budget(5), "took {took:?}");
    assert!(o.has("E0106"), "{:?}", &o.codes()[..o.codes().len().min(5)]);
}

#[test]
fn long_acyclic_chain() {
    // A 10,000-deep chain of bindings (no cycle): deep for a recursive graph walk.
    let n = 10_000;
    let mut body = String::from("  let a0 = synthetic(seed: 1).volume\n");
    for i in 1..n {
        body.push_str(&format!("  let a{i} = agc(a{})\n", i - 1));
    }
    body.push_str(&format!("  output a{} -> \"out/a.sgy\"\n", n - 1));
    let text = format!("import seismic.{{synthetic, agc}}\npipeline p() {{\n{body}}}\n");
    let (o, took) = timed(text.as_bytes());
    eprintln!("10,000-deep binding chain: {took:?}, {:?}", o.plan_codes());
    assert!(took < budget(5), "took {took:?}");
    assert_eq!(o.errors(), 0, "{:?}", o.codes());
}

/// `f0(x) = x`, `f{i}(x) = f{i-1}(x) + 1`, and a pipeline that calls the last one.
fn fn_chain(n: usize) -> String {
    let mut text = String::from("import nn.dense\nfn f0(x: Int) -> Int { x }\n");
    for i in 1..n {
        text.push_str(&format!("fn f{i}(x: Int) -> Int {{ f{}(x) + 1 }}\n", i - 1));
    }
    text.push_str(&format!(
        "pipeline p() {{\n  let l = dense(f{}(1))\n}}\n",
        n - 1
    ));
    text
}

#[test]
fn deep_fn_composition() {
    // fns calling fns, 200 deep: expanded at compile time.
    let (o, took) = timed(fn_chain(200).as_bytes());
    eprintln!("200-deep fn composition: {took:?}, {:?}", o.codes());
    assert!(took < budget(2), "took {took:?}");
    assert_eq!(o.errors(), 0, "{:?}", o.codes());
}

#[test]
fn two_thousand_deep_fn_composition() {
    // Every fn is checked on its own in linear time; expanding the 2,000-deep chain from
    // the pipeline stops at MAX_COMPOSITION_DEPTH with one E0108.
    let (o, took) = timed(fn_chain(2_000).as_bytes());
    eprintln!("2,000-deep fn composition: {took:?}, {:?}", o.codes());
    assert!(took < budget(5), "took {took:?}");
    assert!(o.codes().iter().all(|c| *c == "E0108"), "{:?}", o.codes());
    assert!(o.has("E0108"));
    // A chain within the limit expands cleanly.
    let o = compile(fn_chain(50).as_bytes(), vec![]);
    assert_eq!(o.errors(), 0, "{:?}", o.codes());
}

#[test]
fn mutual_recursion_of_fns() {
    let o = compile(
        b"fn f(x: Int) -> Int { g(x) }\nfn g(x: Int) -> Int { f(x) }\npipeline p() {\n  let a = f(1)\n}\n",
        vec![],
    );
    assert!(o.has("E0108"), "{:?}", o.codes());
}

#[test]
fn every_truncation_of_every_example() {
    // Every prefix of every example (at each line end and at a stride of bytes).
    for (_, bytes) in examples() {
        let mut cuts: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        cuts.extend((0..bytes.len()).step_by(7));
        for at in cuts {
            compile(&bytes[..at], vec![]);
        }
    }
}

#[test]
fn huge_numbers_and_odd_literals() {
    for expr in [
        "99999999999999999999",
        "9223372036854775807",
        "-9223372036854775808",
        "--9223372036854775807",
        "1e999",
        "1e-999 ms",
        "99999999999999999999 GiB",
        "0/s",
        "1 / 0",
        "1.0 / 0.0",
        "9223372036854775807 + 1",
        "9223372036854775807 * 9223372036854775807",
        "-9223372036854775807 - 2",
        "(-9223372036854775807 - 1) / -1",
        "\"\\u{110000}\"",
        "\"\\u{D800}\"",
        "\"\\u{}\"",
        "\"\\u{1234567}\"",
        "1_",
        "1__0",
        "1e",
        "1.e3",
    ] {
        compile(in_pipeline(expr).as_bytes(), vec![]);
        compile(
            format!("import nn.dense\npipeline p() {{\n  let l = dense({expr})\n}}\n").as_bytes(),
            vec![],
        );
    }
}

#[test]
fn overflowing_overrides() {
    let (_, bytes) = &examples()[0];
    for (k, v) in OVERRIDES {
        compile(bytes, vec![(k.to_string(), v.to_string())]);
    }
    let ex = b"import nn.dense\npipeline p(n: Int) {\n  let l = dense(n * n)\n}\n";
    for v in [
        "9223372036854775807",
        "-9223372036854775808",
        "0",
        "-1",
        "3037000500",
    ] {
        compile(ex, vec![("n".into(), v.into())]);
    }
}
