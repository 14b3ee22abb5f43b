//! `mlp`: the command-line driver. A thin layer over the compiler database: it reads files,
//! feeds them to the queries, and renders results.

mod compute;
mod rag;
mod render;
mod segy;

use clap::{Parser, Subcommand, ValueEnum};
use mlp_db::{Database, PlanRequest, SourceFile};
use mlp_diagnostics::Severity;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mlp",
    version,
    about = "A typed language for machine-learning pipelines: check, plan, format, graph."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Copy, Clone, ValueEnum, PartialEq)]
enum Format {
    Human,
    Json,
}

#[derive(Copy, Clone, ValueEnum, PartialEq)]
enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Subcommand)]
enum Cmd {
    /// Parse and type-check files; exit 1 if any has an error.
    Check {
        /// Files, folders (searched for *.mlp) or glob patterns.
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Print the execution plan of a file as deterministic JSON.
    Plan {
        file: PathBuf,
        /// Write the plan here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Override a pipeline parameter: `--set dim=64` (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Compare with an earlier plan and print what changed and why.
        #[arg(long, value_name = "OLD_PLAN")]
        diff: Option<PathBuf>,
        /// Output format of diagnostics and of `--diff`.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Rewrite files in canonical form.
    Fmt {
        #[arg(required = true)]
        files: Vec<String>,
        /// Only report files that are not formatted; exit 1 if any.
        #[arg(long)]
        check: bool,
    },
    /// Draw the pipeline DAG.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show the page for a diagnostic code (`mlp explain E0203`), or list the codes.
    Explain { code: Option<String> },
    /// SEG-Y and Seismic Unix files: inspect, export, synthesise.
    Segy {
        #[command(subcommand)]
        cmd: segy::SegyCmd,
    },
    /// The GPU adapters wgpu sees, and which one `--device auto` picks.
    Devices {
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        cmd: compute::BenchCmd,
    },
    /// Load documents and cut them into chunks: JSON Lines of id, doc, path, start, end, text.
    Chunk(rag::ChunkArgs),
    /// Embed JSON Lines records (`text`) from stdin: each gets `embedding` and `tokens`.
    Embed(rag::EmbedArgs),
    /// Vector indexes: build, add, query, info.
    Index {
        #[command(subcommand)]
        cmd: rag::IndexCmd,
    },
    /// Embed a question with the index's embedder and print the nearest chunks.
    Search(rag::SearchArgs),
    /// Evaluations.
    Eval {
        #[command(subcommand)]
        cmd: rag::EvalCmd,
    },
}

fn main() -> ExitCode {
    // First, while this is the only thread: it may set an environment variable.
    let runtime_dir = headless_runtime_dir();
    // Generous stack: parsing and checking are bounded by nesting limits, but a big stack
    // keeps even pathological inputs far from the end.
    let child = std::thread::Builder::new().stack_size(256 << 20).spawn(|| {
        let cli = Cli::parse();
        run(cli)
    });
    let code = match child.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!(
                "error: internal compiler error; please report it with the input that caused it"
            );
            ExitCode::from(101)
        }
    };
    if let Some(dir) = runtime_dir {
        let _ = std::fs::remove_dir(dir);
    }
    code
}

/// On a headless machine, Mesa's Vulkan drivers (lavapipe included) look for a Wayland display
/// when wgpu creates its instance, and libwayland prints "error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment." (twice) to stderr. When the variable is unset or not a
/// directory, this points it at a private empty directory made for this process (mode 0700,
/// a fresh name, removed at exit): nothing is printed and no display is found, as before.
#[cfg(all(unix, not(target_vendor = "apple")))]
fn headless_runtime_dir() -> Option<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let valid = std::env::var_os("XDG_RUNTIME_DIR")
        .is_some_and(|d| Path::new(&d).is_absolute() && Path::new(&d).is_dir());
    if valid {
        return None;
    }
    let base = std::env::temp_dir();
    for attempt in 0..8u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "mlp-runtime-{}-{nanos:08x}-{attempt}",
            std::process::id()
        ));
        // `create` makes exactly this directory and fails on anything already there (a
        // symlink included), so the directory is ours and private.
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                // SAFETY: setting a variable races with any other thread reading or writing the
                // environment (which is why `set_var` is an `unsafe fn` from edition 2024; this
                // crate is edition 2021, where it is a safe fn, so no `unsafe` block here). It
                // runs first thing in `main`: the Rust runtime starts no thread before `main`,
                // and the driver's worker thread, rayon's pool and wgpu start after this.
                std::env::set_var("XDG_RUNTIME_DIR", &dir);
                return Some(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) => return None,
        }
    }
    None
}

#[cfg(not(all(unix, not(target_vendor = "apple"))))]
fn headless_runtime_dir() -> Option<PathBuf> {
    None
}

fn run(cli: Cli) -> ExitCode {
    match cli.cmd {
        Cmd::Check { files, format } => check(&files, format),
        Cmd::Plan {
            file,
            output,
            set,
            diff,
            format,
        } => plan(&file, output.as_deref(), &set, diff.as_deref(), format),
        Cmd::Fmt { files, check } => fmt(&files, check),
        Cmd::Graph {
            file,
            format,
            output,
        } => graph(&file, format, output.as_deref()),
        Cmd::Explain { code } => explain(code.as_deref()),
        Cmd::Segy { cmd } => segy::run(cmd),
        Cmd::Devices { json } => compute::devices(json),
        Cmd::Bench { cmd } => compute::bench(cmd),
        Cmd::Chunk(a) => rag::chunk(a),
        Cmd::Embed(a) => rag::embed(a),
        Cmd::Index { cmd } => rag::index(cmd),
        Cmd::Search(a) => rag::search(a),
        Cmd::Eval { cmd } => rag::eval(cmd),
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

/// Expands arguments into .mlp files: files as given, folders recursively, globs.
fn expand(args: &[String]) -> Result<Vec<PathBuf>, String> {
    expand_paths(args, |p| p.extension().is_some_and(|x| x == "mlp"))
}

/// Expands arguments into files: files as given, folders recursively (the files `keep`
/// accepts, sorted; a folder with none is an error), globs (the files they match, sorted).
pub(crate) fn expand_paths(
    args: &[String],
    keep: impl Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for a in args {
        let p = Path::new(a);
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &keep, &mut found);
            if found.is_empty() {
                return Err(format!("{a}: the folder holds no files to read"));
            }
            found.sort();
            out.extend(found);
        } else if p.exists() {
            out.push(p.to_path_buf());
        } else if a.contains(['*', '?', '[']) {
            let mut found = Vec::new();
            for entry in glob::glob(a).map_err(|e| format!("bad pattern `{a}`: {e}"))? {
                let e = entry.map_err(|e| e.to_string())?;
                if e.is_file() {
                    found.push(e);
                }
            }
            if found.is_empty() {
                return Err(format!("no file matches `{a}`"));
            }
            found.sort();
            out.extend(found);
        } else {
            return Err(format!("{a}: no such file or directory"));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, keep: &impl Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, keep, out);
            } else if p.is_file() && keep(&p) {
                out.push(p);
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn check(files: &[String], format: Format) -> ExitCode {
    let paths = match expand(files) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let db = Database::new();
    let (mut errors, mut warnings) = (0usize, 0usize);
    let mut json_files = Vec::new();
    let stderr = std::io::stderr();
    for path in &paths {
        let bytes = match read(path) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        let name = path.display().to_string();
        let file = SourceFile::new(&db, name.clone(), bytes);
        let diags = mlp_db::diagnostics(&db, file);
        let text = String::from_utf8_lossy(file.bytes(&db)).into_owned();
        for d in diags {
            match d.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
        }
        match format {
            Format::Human => {
                let mut lock = stderr.lock();
                for d in diags {
                    let _ = writeln!(lock, "{}", render::human(&name, &text, d));
                }
            }
            Format::Json => json_files.push(serde_json::json!({
                "path": name,
                "diagnostics": diags.iter().map(|d| render::json(&name, &text, d)).collect::<Vec<_>>(),
            })),
        }
    }
    match format {
        Format::Json => {
            let out =
                serde_json::json!({"files": json_files, "errors": errors, "warnings": warnings});
            println!("{}", serde_json::to_string_pretty(&out).unwrap());
        }
        Format::Human => {
            let files_word = if paths.len() == 1 { "file" } else { "files" };
            eprintln!(
                "checked {} {files_word}: {errors} error(s), {warnings} warning(s)",
                paths.len()
            );
        }
    }
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn report(name: &str, text: &str, diags: &[mlp_diagnostics::Diagnostic], format: Format) {
    match format {
        Format::Human => {
            for d in diags {
                eprintln!("{}", render::human(name, text, d));
            }
        }
        Format::Json => {
            let v: Vec<_> = diags.iter().map(|d| render::json(name, text, d)).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"path": name, "diagnostics": v}))
                    .unwrap()
            );
        }
    }
}

fn plan(
    path: &Path,
    output: Option<&Path>,
    set: &[String],
    diff: Option<&Path>,
    format: Format,
) -> ExitCode {
    let mut overrides = Vec::new();
    for s in set {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                overrides.push((k.trim().to_string(), v.to_string()))
            }
            _ => return fail(format!("`--set {s}`: expected NAME=VALUE")),
        }
    }
    let bytes = match read(path) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let db = Database::new();
    let name = path.display().to_string();
    let file = SourceFile::new(&db, name.clone(), bytes);
    let req = PlanRequest::new(&db, file, overrides);
    let text = String::from_utf8_lossy(file.bytes(&db)).into_owned();
    let plan = match mlp_db::plan(&db, req) {
        Ok(p) => p,
        Err(diags) => {
            report(&name, &text, diags, format);
            return ExitCode::from(1);
        }
    };
    if let Some(old_path) = diff {
        let old_text = match std::fs::read_to_string(old_path) {
            Ok(t) => t,
            Err(e) => return fail(format!("cannot read {}: {e}", old_path.display())),
        };
        let old = match mlp_plan::Plan::from_json(&old_text) {
            Ok(p) => p,
            Err(e) => return fail(format!("{}: {e}", old_path.display())),
        };
        let d = mlp_plan::diff(&old, plan);
        match format {
            Format::Human => {
                let t = d.render_text();
                print!("{t}");
                if !t.ends_with('\n') {
                    println!();
                }
            }
            Format::Json => println!("{}", serde_json::to_string_pretty(&d).unwrap()),
        }
        return ExitCode::SUCCESS;
    }
    let json = plan.to_json();
    match output {
        Some(o) => {
            if let Err(e) = write_atomic(o, json.as_bytes()) {
                return fail(format!("cannot write {}: {e}", o.display()));
            }
            eprintln!(
                "wrote {} ({} pipeline(s), {} node(s))",
                o.display(),
                plan.pipelines.len(),
                plan.pipelines.iter().map(|p| p.nodes.len()).sum::<usize>()
            );
        }
        None => print!("{json}"),
    }
    ExitCode::SUCCESS
}

/// Writes through a temporary file and a rename, so a failed write never leaves half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.mlp-tmp",
        path.file_name()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn fmt(files: &[String], check_only: bool) -> ExitCode {
    let paths = match expand(files) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let mut unformatted = 0;
    let mut failed = 0;
    for path in &paths {
        let text = match std::fs::read(path).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                eprintln!("error: {}: not valid UTF-8; not formatted", path.display());
                failed += 1;
                continue;
            }
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        match mlp_fmt::format_source(&text) {
            Ok(out) if out == text => {}
            Ok(out) => {
                unformatted += 1;
                if check_only {
                    println!("{}: not formatted", path.display());
                } else if let Err(e) = write_atomic(path, out.as_bytes()) {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    failed += 1;
                } else {
                    println!("formatted {}", path.display());
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    if failed > 0 || (check_only && unformatted > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn graph(path: &Path, format: GraphFormat, output: Option<&Path>) -> ExitCode {
    let bytes = match read(path) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let db = Database::new();
    let name = path.display().to_string();
    let file = SourceFile::new(&db, name.clone(), bytes);
    let req = PlanRequest::new(&db, file, vec![]);
    let text = String::from_utf8_lossy(file.bytes(&db)).into_owned();
    let plan = match mlp_db::plan(&db, req) {
        Ok(p) => p,
        Err(diags) => {
            report(&name, &text, diags, Format::Human);
            return ExitCode::from(1);
        }
    };
    let out = match format {
        GraphFormat::Dot => mlp_plan::to_dot(plan),
        GraphFormat::Mermaid => mlp_plan::to_mermaid(plan),
    };
    match output {
        Some(o) => {
            if let Err(e) = write_atomic(o, out.as_bytes()) {
                return fail(format!("cannot write {}: {e}", o.display()));
            }
        }
        None => print!("{out}"),
    }
    ExitCode::SUCCESS
}

fn explain(code: Option<&str>) -> ExitCode {
    match code {
        None => {
            for c in mlp_diagnostics::codes() {
                println!("{c}  {}", mlp_diagnostics::title(c).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Some(c) => match mlp_diagnostics::page(c) {
            Some(p) => {
                print!("{p}");
                ExitCode::SUCCESS
            }
            None => {
                let known: Vec<&str> = mlp_diagnostics::codes().collect();
                let mut msg = format!("unknown diagnostic code `{c}`");
                if let Some(s) =
                    mlp_diagnostics::did_you_mean(&c.to_ascii_uppercase(), known.iter().copied())
                {
                    msg.push_str(&format!("; did you mean `{s}`?"));
                }
                msg.push_str(" (`mlp explain` lists them all)");
                fail(msg)
            }
        },
    }
}
