//! Every example checks clean, plans, and its plan is deterministic, valid against
//! spec/plan.schema.json and internally consistent. The standard library itself is clean
//! and documented.

use mlp_db::{Database, PlanRequest, SourceFile};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn plan_text(path: &Path) -> String {
    let db = Database::new();
    let rel = path.strip_prefix(root()).unwrap().display().to_string();
    let file = SourceFile::new(&db, rel.clone(), std::fs::read(path).unwrap());
    let diags = mlp_db::diagnostics(&db, file);
    assert!(diags.is_empty(), "{rel} does not check clean: {diags:#?}");
    let req = PlanRequest::new(&db, file, vec![]);
    match mlp_db::plan(&db, req) {
        Ok(p) => p.to_json(),
        Err(d) => panic!("{rel} does not plan: {d:#?}"),
    }
}

#[test]
fn at_least_the_four_flagship_examples() {
    let names: Vec<String> = examples()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "seismic_embeddings",
        "fault_segmentation",
        "rag",
        "should_cost",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "missing example {want}: {names:?}"
        );
    }
}

#[test]
fn every_example_checks_plans_and_validates() {
    let schema: serde_json::Value = serde_json::from_str(mlp_plan::schema()).unwrap();
    let validator =
        jsonschema::validator_for(&schema).expect("spec/plan.schema.json is a valid schema");
    let mut count = 0;
    for dir in examples() {
        assert!(
            dir.join("README.md").exists(),
            "{} has no README.md",
            dir.display()
        );
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "mlp"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no .mlp file", dir.display());
        for f in files {
            count += 1;
            let a = plan_text(&f);
            let b = plan_text(&f);
            assert_eq!(a, b, "{}: two plans differ", f.display());
            let v: serde_json::Value = serde_json::from_str(&a).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&v)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{}: plan violates the schema:\n{}",
                f.display(),
                errors.join("\n")
            );
            let plan = mlp_plan::Plan::from_json(&a).unwrap();
            if let Err(e) = mlp_plan::validate(&plan) {
                panic!("{}: inconsistent plan: {e:?}", f.display());
            }
            assert!(
                plan.pipelines.iter().all(|p| !p.nodes.is_empty()),
                "{}: a pipeline without nodes",
                f.display()
            );
        }
    }
    assert!(count >= 4);
}

#[test]
fn examples_are_formatted() {
    for dir in examples() {
        let f = dir.join("pipeline.mlp");
        if !f.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let formatted =
            mlp_fmt::format_source(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(
            formatted,
            text,
            "{} is not in canonical form: run `mlp fmt {}`",
            f.display(),
            f.display()
        );
    }
}

#[test]
fn stdlib_is_clean_and_documented() {
    let dir = root().join("stdlib");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "the standard library has {} modules",
        files.len()
    );
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let parsed = mlp_syntax::parse(&text);
        assert!(
            parsed.diagnostics.is_empty(),
            "{}: {:#?}",
            f.display(),
            parsed.diagnostics
        );
        for item in &parsed.file.items {
            if let Some(name) = item.name() {
                assert!(
                    item.doc.is_some(),
                    "{}: `{}` has no doc comment",
                    f.display(),
                    name.name
                );
            }
            let params = match &item.kind {
                mlp_syntax::ast::ItemKind::Fn(x) => &x.params,
                mlp_syntax::ast::ItemKind::Op(x) => &x.params,
                _ => continue,
            };
            for p in params {
                if p.name.name != "self" {
                    assert!(
                        p.doc.is_some(),
                        "{}: parameter `{}` of `{}` has no doc comment",
                        f.display(),
                        p.name.name,
                        item.name().unwrap().name
                    );
                }
            }
        }
        let formatted =
            mlp_fmt::format_source(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(
            formatted,
            text,
            "{} is not in canonical form: run `mlp fmt`",
            f.display()
        );
    }
}
