use mlp_diagnostics::line_col;

fn run(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let parsed = mlp_syntax::parse(&text);
    let checked = mlp_sema::check(path, &text, &parsed.file, &[]);
    let mut out = String::new();
    for d in parsed.diagnostics.iter().chain(checked.diagnostics.iter()) {
        let (l, c) = d.primary_span().map(|s| line_col(&text, s.start as usize)).unwrap_or((0, 0));
        out.push_str(&format!("{path}:{l}:{c}: {} {}: {}\n", d.code, if d.is_error() { "error" } else { "warning" }, d.message));
        if let Some(h) = &d.help {
            out.push_str(&format!("    help: {h}\n"));
        }
    }
    for p in &checked.pipelines {
        for n in &p.nodes {
            out.push_str(&format!("  node {} = {} : {}\n", n.id, n.op, n.ty));
        }
    }
    out
}

#[test]
fn smoke() {
    let p = mlp_sema::prelude::prelude();
    for (f, d) in &p.diagnostics {
        eprintln!("STDLIB {f}: {} {} {:?}", d.code, d.message, d.labels);
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    for d in files {
        let f = d.join("pipeline.mlp");
        if f.exists() {
            eprintln!("{}", run(f.to_str().unwrap()));
        }
    }
    if let Ok(extra) = std::env::var("MLP_SMOKE") {
        eprintln!("{}", run(&extra));
    }
}
