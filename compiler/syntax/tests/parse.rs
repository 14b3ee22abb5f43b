use mlp_syntax::ast::*;
use mlp_syntax::parse;

const SAMPLE: &str = r#"
import seismic.{segy, rms_normalize}
import nn.{autoencoder, dense, relu, adam, mse}
import vector.hnsw

/// 32-d embeddings of every trace of a survey.
/// Second line.
pipeline trace_embeddings(survey: Path = "data/synthetic.sgy", dim: Int = 32) {
  let cube   = segy(survey, inline_byte: 189, crossline_byte: 193)    // Volume[il, xl, t] @ 4 ms
  let traces = rms_normalize(cube.traces)
  let ae     = autoencoder(encoder: [dense(128), relu, dense(64), relu, dense(dim)])
  let fit    = train(ae, on: traces, epochs: 20, batch: 256, optimizer: adam(lr: 1e-3), loss: mse, seed: 7)
  let index  = hnsw(fit.encode(traces))
  let t: Table{date: Date, steel: Float} = csv("x.csv")
  let d = t.derive { r = steel / lag(steel, 12) * 100, x = -steel + 1 }
  let q = [4 ms, 30 d, 256 tokens, 100/s, 10 %, 16 GiB, 2 min]
  output index -> "out/traces.index"
  deploy endpoint(fit, rate: 100/s)
  schedule every(1 d)
}

fn enc(dim: Int) -> [Layer] {
  [dense(128), relu, dense(dim)]
}

@version(2)
op segy(path: Path, inline_byte: Int = 189) -> Volume[il, xl, t]
op train<M>(model: Model[Traces[n, t] -> Embeddings[d]], on: Traces[n, t]) -> Table{a: Int}
"#;

#[test]
fn parses_sample() {
    let p = parse(SAMPLE);
    assert!(p.diagnostics.is_empty(), "{:#?}", p.diagnostics);
    assert_eq!(p.file.items.len(), 7);
    let ItemKind::Pipeline(pl) = &p.file.items[3].kind else {
        panic!()
    };
    assert_eq!(
        p.file.items[3].doc.as_deref(),
        Some("32-d embeddings of every trace of a survey.\nSecond line.")
    );
    assert_eq!(pl.stmts.len(), 11);
    assert_eq!(pl.params.len(), 2);
    let Stmt::Let(q) = &pl.stmts[7] else { panic!() };
    let ExprKind::List(items) = &q.value.kind else {
        panic!()
    };
    let units: Vec<String> = items
        .iter()
        .map(|e| match &e.kind {
            ExprKind::Quantity { unit, .. } => unit.clone(),
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(units, ["ms", "d", "tokens", "/s", "%", "GiB", "min"]);
    assert!(p.file.comments.iter().any(|c| c.text.contains("Volume[il")));
}

#[test]
fn recovers_per_item_and_statement() {
    let src = "pipeline a() {\n  let x = foo(\n  let y = bar(1)\n  let z = )\n}\n\npipeline b() {\n  let w = ]\n}\nfn ok() -> Int { 1 }\n";
    let p = parse(src);
    let names: Vec<_> = p
        .file
        .items
        .iter()
        .filter_map(|i| i.name())
        .map(|n| n.name.clone())
        .collect();
    assert!(
        names.contains(&"a".to_string()),
        "{names:?} {:#?}",
        p.diagnostics
    );
    assert!(names.contains(&"ok".to_string()));
    assert!(p.diagnostics.len() >= 2, "{:#?}", p.diagnostics);
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = format!(
        "pipeline a() {{ let x = {}1{} }}",
        "(".repeat(10000),
        ")".repeat(10000)
    );
    let p = parse(&src);
    assert!(p.diagnostics.iter().any(|d| d.code == "E0003"));
    let long = format!("pipeline a() {{ let x = 1{} }}", " + 1".repeat(100_000));
    let p = parse(&long);
    assert!(p.diagnostics.iter().any(|d| d.code == "E0003"));
}

#[test]
fn bad_input() {
    assert!(parse("").diagnostics.iter().all(|d| d.code == "W0001"));
    assert_eq!(
        mlp_syntax::parse_bytes(&[0xff, 0xfe, 0x00]).diagnostics[0].code,
        "E0004"
    );
    assert!(parse("pipeline a() { let s = \"abc }\n")
        .diagnostics
        .iter()
        .any(|d| d.code == "E0002"));
}

#[test]
fn broken_statement_keeps_the_others() {
    let src = "pipeline other() {\n  let y = foo(\n  let z: Int = \"s\"\n}\n";
    let p = parse(src);
    let ItemKind::Pipeline(pl) = &p.file.items.first().expect("pipeline recovered").kind else {
        panic!()
    };
    assert_eq!(pl.stmts.len(), 1, "{:#?}", p.diagnostics);
}
