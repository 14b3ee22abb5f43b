//! Reading and writing plan JSON: round trips, determinism, the snapshot, and the errors a
//! user sees for files that are not (this version of) a plan.
mod common;

use mlp_plan::{Plan, PlanError};

#[test]
fn round_trip_preserves_the_plan() {
    let plan = common::sample_plan();
    let text = plan.to_json();
    let back = Plan::from_json(&text).expect("reads what it wrote");
    assert_eq!(back, plan);
    assert_eq!(back.to_json(), text, "writing again gives the same bytes");
}

#[test]
fn to_json_is_pretty_deterministic_and_ends_with_newline() {
    let a = common::sample_plan().to_json();
    let b = common::sample_plan().to_json();
    assert_eq!(a, b);
    assert!(a.ends_with("}\n"));
    assert!(a.starts_with("{\n  \"format\": \"mlp-plan\",\n  \"version\": 1,\n"));
    // Optional fields are left out rather than written as null or zero.
    assert!(!a.contains("null"));
    assert!(!a.contains("\"gpu\": 0"));
    assert!(a.contains("\"gpu\": 1"));
}

#[test]
fn sample_plan_matches_snapshot() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample.plan.json"
    );
    let actual = common::sample_plan().to_json();
    if std::env::var_os("MLP_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(path)
        .expect("snapshot exists (MLP_UPDATE_SNAPSHOTS=1 cargo test -p mlp-plan writes it)");
    assert_eq!(
        actual, expected,
        "plan JSON changed; if intended, rerun with MLP_UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn rejects_a_newer_version_clearly() {
    let text = common::sample_plan()
        .to_json()
        .replace("\"version\": 1,", "\"version\": 2,");
    let err = Plan::from_json(&text).unwrap_err();
    assert_eq!(err, PlanError::UnsupportedVersion("2".into()));
    let msg = err.to_string();
    assert!(msg.contains("version 2 is unsupported"), "{msg}");
    assert!(msg.contains("this build reads version 1"), "{msg}");
}

#[test]
fn rejects_garbage_with_position() {
    let err = Plan::from_json("{\n  \"format\": \"mlp-plan\",\n  oops\n}").unwrap_err();
    match &err {
        PlanError::Json { line, column, .. } => {
            assert_eq!(*line, 3);
            assert!(*column >= 3);
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("not valid JSON at line 3, column"),
        "{err}"
    );
}

#[test]
fn rejects_json_that_is_not_a_plan() {
    let e = Plan::from_json("[1, 2]").unwrap_err();
    assert_eq!(
        e.to_string(),
        "not an mlp plan: expected a JSON object, found an array"
    );
    let e = Plan::from_json(r#"{"name": "package.json"}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not an mlp plan: no \"format\": \"mlp-plan\" field"
    );
    let e = Plan::from_json(r#"{"format": "cwl", "version": 1}"#).unwrap_err();
    assert!(e.to_string().contains("\"format\" is \"cwl\""), "{e}");
    let e = Plan::from_json(r#"{"format": "mlp-plan"}"#).unwrap_err();
    assert!(matches!(e, PlanError::NotAPlan(_)), "{e}");
}

#[test]
fn structural_errors_name_the_field_and_position() {
    let text = common::sample_plan()
        .to_json()
        .replace("  \"compiler\": \"mlp 0.1.0\",\n", "");
    let err = Plan::from_json(&text).unwrap_err();
    assert!(matches!(err, PlanError::Invalid { .. }), "{err:?}");
    assert!(
        err.to_string().contains("missing field `compiler`"),
        "{err}"
    );

    let text = common::sample_plan().to_json().replacen(
        "\"op_version\": 1,",
        "\"op_version\": 1, \"retries\": 3,",
        1,
    );
    let err = Plan::from_json(&text).unwrap_err();
    assert!(err.to_string().contains("unknown field `retries`"), "{err}");
    assert!(err.to_string().contains("line "), "{err}");
}
