#[test]
fn the_standard_library_has_no_problems() {
    let problems = mlp_sema::prelude_problems();
    assert!(problems.is_empty(), "{problems:#?}");
    let p = mlp_sema::prelude::prelude();
    for m in [
        "core", "seismic", "text", "embed", "nn", "vector", "table", "forecast", "serve",
        "tracking",
    ] {
        assert!(p.modules.contains_key(m), "missing stdlib module {m}");
    }
}
