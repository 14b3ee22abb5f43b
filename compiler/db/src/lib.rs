//! The compiler's database: every step is a salsa query over file inputs, so the CLI, the
//! LSP and the tests share one incremental pipeline and the compiler does no I/O of its own.
//!
//! ```text
//! SourceFile (input: path, bytes) ──parse──▶ Parsed ──check──▶ Checked ──plan(PlanRequest)──▶ Plan
//! ```

use mlp_diagnostics::{Diagnostic, Severity};
use mlp_plan::Plan;
use mlp_sema::Checked;
use mlp_syntax::Parsed;

/// Files larger than this are refused before parsing (a diagnostic, not an allocation spike).
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;

/// One `.mlp` file as the editor or the disk has it. Bytes, not text: invalid UTF-8 is a
/// diagnostic of the parse query, not an error at the edge.
#[salsa::input]
pub struct SourceFile {
    #[returns(ref)]
    pub path: String,
    #[returns(ref)]
    pub bytes: Vec<u8>,
}

/// A request for a plan: a file and the `--set name=value` overrides of its parameters.
#[salsa::input]
pub struct PlanRequest {
    pub file: SourceFile,
    #[returns(ref)]
    pub overrides: Vec<(String, String)>,
}

#[salsa::db]
pub trait Db: salsa::Database {}

#[salsa::db]
#[derive(Default, Clone)]
pub struct Database {
    storage: salsa::Storage<Self>,
}

#[salsa::db]
impl salsa::Database for Database {}

#[salsa::db]
impl Db for Database {}

impl Database {
    pub fn new() -> Self {
        Self::default()
    }

    /// A database that reports every query execution to `on_execute` (for tests and
    /// profiling): the query's debug name, e.g. `parse(Id(0))`.
    pub fn with_execution_log(on_execute: impl Fn(String) + Send + Sync + 'static) -> Self {
        let storage = salsa::Storage::new(Some(Box::new(move |event: salsa::Event| {
            if let salsa::EventKind::WillExecute { database_key } = event.kind {
                on_execute(format!("{database_key:?}"));
            }
        })));
        Database { storage }
    }
}

fn text_of(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

/// Parsing: the AST of everything that parsed, and diagnostics for everything that did not.
#[salsa::tracked(returns(ref), no_eq)]
pub fn parse(db: &dyn Db, file: SourceFile) -> Parsed {
    let bytes = file.bytes(db);
    if bytes.len() > MAX_FILE_BYTES {
        return Parsed {
            file: mlp_syntax::ast::File {
                items: vec![],
                comments: vec![],
            },
            diagnostics: vec![Diagnostic::error(
                "E0005",
                format!(
                    "the file is {} MiB; the limit is {} MiB",
                    bytes.len() >> 20,
                    MAX_FILE_BYTES >> 20
                ),
            )
            .at(mlp_diagnostics::Span::new(0, 0), "file too large")
            .help("split the pipelines across several files")],
            broken: vec![],
        };
    }
    mlp_syntax::parse_bytes(bytes)
}

/// Name resolution and type checking with the parameters' defaults.
#[salsa::tracked(returns(ref), no_eq)]
pub fn check(db: &dyn Db, file: SourceFile) -> Checked {
    let parsed = parse(db, file);
    mlp_sema::check(file.path(db), text_of(file.bytes(db)), parsed, &[])
}

/// Every diagnostic of a file, parse and check together, sorted by position.
#[salsa::tracked(returns(ref), no_eq)]
pub fn diagnostics(db: &dyn Db, file: SourceFile) -> Vec<Diagnostic> {
    let mut all = parse(db, file).diagnostics.clone();
    if !all
        .iter()
        .any(|d| matches!(d.code.as_str(), "E0004" | "E0005"))
    {
        all.extend(check(db, file).diagnostics.iter().cloned());
    }
    all.sort_by_key(|d| d.primary_span().map(|s| s.start).unwrap_or(0));
    all
}

/// The execution plan, or the diagnostics that prevent one (errors only; warnings do not).
#[salsa::tracked(returns(ref), no_eq)]
pub fn plan(db: &dyn Db, req: PlanRequest) -> Result<Plan, Vec<Diagnostic>> {
    let file = *req.file(db);
    let overrides = req.overrides(db);
    let parsed = parse(db, file);
    let mut errors: Vec<Diagnostic> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .cloned()
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = text_of(file.bytes(db));
    let checked_owned;
    let checked = if overrides.is_empty() {
        check(db, file)
    } else {
        checked_owned = mlp_sema::check(file.path(db), text, parsed, overrides);
        &checked_owned
    };
    errors.extend(
        checked
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .cloned(),
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    if checked.pipelines.is_empty() {
        return Err(vec![Diagnostic::error(
            "E0302",
            "the file has no pipeline to plan",
        )
        .at(mlp_diagnostics::Span::new(0, 0), "no `pipeline` here")
        .help("declare one: `pipeline name(param: Type = default) { ... }`")]);
    }
    mlp_lower::lower(file.path(db), file.bytes(db), text, checked)
}
