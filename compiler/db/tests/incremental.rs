//! The database recomputes only what an edit invalidates.

use mlp_db::{Database, PlanRequest, SourceFile};
use salsa::Setter;
use std::sync::{Arc, Mutex};

const A: &str = "import nn.{dense}\n\npipeline p(dim: Int = 8) {\n  let layers = [dense(dim)]\n}\n";
const B: &str = "import nn.{dense}\n\npipeline p(dim: Int = 8) {\n  let layers = [dense(dim), dense(oops)]\n}\n";

#[test]
fn queries_rerun_only_after_an_edit() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    let mut db = Database::with_execution_log(move |q| sink.lock().unwrap().push(q));
    let file = SourceFile::new(&db, "a.mlp".into(), A.as_bytes().to_vec());
    assert!(mlp_db::diagnostics(&db, file).is_empty());
    let first = log.lock().unwrap().len();
    assert!(
        first >= 3,
        "parse, check and diagnostics ran: {:?}",
        log.lock().unwrap()
    );

    // Asking again executes nothing.
    assert!(mlp_db::diagnostics(&db, file).is_empty());
    assert_eq!(log.lock().unwrap().len(), first);

    // An edit re-runs the queries and the new error appears.
    file.set_bytes(&mut db).to(B.as_bytes().to_vec());
    let diags = mlp_db::diagnostics(&db, file);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "E0105");
    assert!(log.lock().unwrap().len() > first);

    // Planning reuses the parse of the current text.
    file.set_bytes(&mut db).to(A.as_bytes().to_vec());
    let req = PlanRequest::new(&db, file, vec![]);
    let plan = mlp_db::plan(&db, req).as_ref().expect("plans");
    assert_eq!(plan.pipelines[0].params[0].value, serde_json::json!(8));
    let before = log.lock().unwrap().len();
    let again = mlp_db::plan(&db, req).as_ref().unwrap().clone();
    assert_eq!(log.lock().unwrap().len(), before);
    assert_eq!(again.to_json(), plan.to_json());
}

#[test]
fn overrides_change_the_plan_but_not_the_parse() {
    let db = Database::new();
    let file = SourceFile::new(&db, "a.mlp".into(), A.as_bytes().to_vec());
    let base = mlp_db::plan(&db, PlanRequest::new(&db, file, vec![]))
        .as_ref()
        .unwrap()
        .clone();
    let over = mlp_db::plan(
        &db,
        PlanRequest::new(&db, file, vec![("dim".into(), "16".into())]),
    )
    .as_ref()
    .unwrap()
    .clone();
    assert_eq!(over.pipelines[0].params[0].value, serde_json::json!(16));
    assert!(over.pipelines[0].params[0].overridden);
    assert_ne!(base.to_json(), over.to_json());
}
