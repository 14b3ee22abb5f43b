//! One test per rule of the canonical style: an input and the expected output, written by
//! hand. Every expected output must also be a fixed point.

use mlp_fmt::format_source;

#[track_caller]
fn check(input: &str, expected: &str) {
    let out = format_source(input).unwrap_or_else(|e| panic!("refused: {e}\n{input}"));
    assert_eq!(
        out, expected,
        "\n--- got ---\n{out}\n--- want ---\n{expected}"
    );
    let again = format_source(&out).expect("the output formats again");
    assert_eq!(again, out, "not idempotent");
}

#[test]
fn indentation_and_statement_spacing() {
    check(
        "pipeline p(){\nlet   x:Int=1\n        output x->\"out\"\n deploy   serve(x)\nschedule every(1 d)}",
        "pipeline p() {\n  let x: Int = 1\n  output x -> \"out\"\n  deploy serve(x)\n  schedule every(1 d)\n}\n",
    );
}

#[test]
fn items_are_separated_by_one_blank_line_and_imports_stay_together() {
    check(
        "import a\n\n\nimport b.{c, d as e}\nimport f.g as h\nfn one() -> Int { 1 }\n\n\n\nfn two() -> Int { 2 }\nop three(x: Int) -> Int\nimport z",
        "import a\nimport b.{c, d as e}\nimport f.g as h\n\nfn one() -> Int {\n  1\n}\n\nfn two() -> Int {\n  2\n}\n\nop three(x: Int) -> Int\n\nimport z\n",
    );
}

#[test]
fn file_ends_with_one_newline_without_trailing_whitespace() {
    check(
        "fn f() -> Int { 1 }   \n\n\n\n",
        "fn f() -> Int {\n  1\n}\n",
    );
    check("fn f() -> Int { 1 }", "fn f() -> Int {\n  1\n}\n");
    check("", "");
    check("\n\n  \n", "");
}

#[test]
fn tabs_and_crlf_are_normalised() {
    check(
        "pipeline p() {\r\n\tlet x = 1\t// note\t\r\n\tlet y = \"a\tb\"\r\n}\r\n",
        "pipeline p() {\n  let x = 1 // note\n  let y = \"a\\tb\"\n}\n",
    );
}

#[test]
fn attributes_on_their_own_lines_with_docs_above() {
    check(
        "/// Reads SEG-Y.\n@version(2) @deprecated op segy(path: Path) -> Volume[il, xl, t]",
        "/// Reads SEG-Y.\n@version(2)\n@deprecated\nop segy(path: Path) -> Volume[il, xl, t]\n",
    );
}

#[test]
fn blank_lines_in_bodies_are_collapsed_not_removed() {
    check(
        "pipeline p() {\n\n\n  let a = 1\n\n\n\n  let b = 2\n  let c = 3\n\n}\n",
        "pipeline p() {\n  let a = 1\n\n  let b = 2\n  let c = 3\n}\n",
    );
}

#[test]
fn expression_spacing() {
    check(
        "pipeline p() {\n  let a = f( a,b:1 )\n  let b = a+b*c/d-e\n  let c = [ 1,2 ]\n  let d = { a:1,b:2 }\n  let e = t.derive{r=a/b,s=!c}\n  let f = x . y . z ( )\n  let g = ( a||b )&&c<=d\n}\n",
        "pipeline p() {\n  let a = f(a, b: 1)\n  let b = a + b * c / d - e\n  let c = [1, 2]\n  let d = {a: 1, b: 2}\n  let e = t.derive { r = a / b, s = !c }\n  let f = x.y.z()\n  let g = (a || b) && c <= d\n}\n",
    );
}

#[test]
fn trailing_column_blocks() {
    check(
        "pipeline p() {\n  let a = derive(t){r=a}\n  let b = t.derive(){r=a}\n  let c = f(x){a=1}{b=2}\n  let d = t.derive{}\n}\n",
        "pipeline p() {\n  let a = derive(t) { r = a }\n  let b = t.derive { r = a }\n  let c = f(x) { a = 1 } { b = 2 }\n  let d = t.derive {}\n}\n",
    );
}

#[test]
fn types() {
    check(
        "op f(a: Volume[ il,xl , t ], b: Table { date : Date , steel:Float }, c: Model[ A->B ], d: [ Layer ], e: {name:Str}, f: Traces[_, 4]) -> Model[Traces[n, t] -> Embeddings[d]]",
        "op f(\n  a: Volume[il, xl, t],\n  b: Table{date: Date, steel: Float},\n  c: Model[A -> B],\n  d: [Layer],\n  e: {name: Str},\n  f: Traces[_, 4],\n) -> Model[Traces[n, t] -> Embeddings[d]]\n",
    );
    check("fn id<A,B>(x:A)->A", "fn id<A, B>(x: A) -> A\n");
}

#[test]
fn quantities() {
    check(
        "pipeline p() {\n  let q = [4ms, 4   ms, 100/s, 10%, 16 GiB, 2min, 30 d, 256 tokens]\n}\n",
        "pipeline p() {\n  let q = [4 ms, 4 ms, 100/s, 10 %, 16 GiB, 2 min, 30 d, 256 tokens]\n}\n",
    );
}

#[test]
fn numbers_keep_their_spelling() {
    check(
        "pipeline p() {\n  let n = [1_000, 1e-3, 2.50, 0007, - 1, -2.5E3, --4]\n}\n",
        "pipeline p() {\n  let n = [1_000, 1e-3, 2.50, 0007, -1, -2.5E3, --4]\n}\n",
    );
}

#[test]
fn strings_are_re_escaped() {
    check(
        "pipeline p() {\n  let s = [\"a\\\"b\", \"\\\\\", \"l\\nt\\tr\\r0\\0\", \"\\u{1b}\\u{7f}\", \"\\u{e9}\\u{1F600}\", \"raw\ttab\"]\n}\n",
        "pipeline p() {\n  let s = [\"a\\\"b\", \"\\\\\", \"l\\nt\\tr\\r0\\0\", \"\\u{1b}\\u{7f}\", \"é😀\", \"raw\\ttab\"]\n}\n",
    );
}

#[test]
fn long_argument_lists_break_outermost_first() {
    check(
        "pipeline p() {\n  let fit = train(ae, on: traces, epochs: 20, batch: 256, optimizer: adam(lr: 1e-3), loss: mse, seed: 7)\n}\n",
        "pipeline p() {\n  let fit = train(\n    ae,\n    on: traces,\n    epochs: 20,\n    batch: 256,\n    optimizer: adam(lr: 1e-3),\n    loss: mse,\n    seed: 7,\n  )\n}\n",
    );
}

#[test]
fn breaking_recurses_into_elements_that_still_do_not_fit() {
    let input = "pipeline p() {\n  let fit = train(autoencoder(encoder: [dense(128), relu, dense(64), relu, dense(32), dense(32), dense(16), relu, dense(12345678)]), on: traces)\n}\n";
    let expected = "\
pipeline p() {
  let fit = train(
    autoencoder(
      encoder: [
        dense(128),
        relu,
        dense(64),
        relu,
        dense(32),
        dense(32),
        dense(16),
        relu,
        dense(12345678),
      ],
    ),
    on: traces,
  )
}
";
    check(input, expected);
}

#[test]
fn short_broken_lists_are_joined() {
    check(
        "pipeline p() {\n  let a = f(\n    1,\n    2,\n  )\n  let b = [\n  ]\n}\n",
        "pipeline p() {\n  let a = f(1, 2)\n  let b = []\n}\n",
    );
}

#[test]
fn records_and_column_blocks_break_too() {
    let input = "pipeline p() {\n  let r = {name: \"aaaaaaaaaaaaaaaaaaaaaaa\", size: 12345678901234, other: \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}\n  let d = derive(t) { r = steel / lag(steel, 12) * 100, x = -steel + 1, yyyyyyyyyyyyyyyyyy = zzzzzzzzzzzzzzz }\n}\n";
    let expected = "\
pipeline p() {
  let r = {
    name: \"aaaaaaaaaaaaaaaaaaaaaaa\",
    size: 12345678901234,
    other: \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",
  }
  let d = derive(t) {
    r = steel / lag(steel, 12) * 100,
    x = -steel + 1,
    yyyyyyyyyyyyyyyyyy = zzzzzzzzzzzzzzz,
  }
}
";
    check(input, expected);
}

#[test]
fn method_chains_break_the_last_call() {
    let input = "pipeline p() {\n  let x = load(\"aaaaaaaaaaaaaaaaaaaa\").filter(kind: \"bbbbbbbbbbbbbbbbbbbbbbbbbbbb\").select(columns: [\"a\", \"b\", \"c\", \"d\"])\n}\n";
    let expected = "\
pipeline p() {
  let x = load(\"aaaaaaaaaaaaaaaaaaaa\").filter(kind: \"bbbbbbbbbbbbbbbbbbbbbbbbbbbb\").select(
    columns: [\"a\", \"b\", \"c\", \"d\"],
  )
}
";
    check(input, expected);
}

#[test]
fn parameter_lists_follow_the_same_rule() {
    check(
        "pipeline trace_embeddings(survey: Path = \"data/synthetic.sgy\", dim: Int = 32, epochs: Int = 20, seed: Int = 7) {\n  output x -> \"o\"\n}\n",
        "pipeline trace_embeddings(\n  survey: Path = \"data/synthetic.sgy\",\n  dim: Int = 32,\n  epochs: Int = 20,\n  seed: Int = 7,\n) {\n  output x -> \"o\"\n}\n",
    );
    check(
        "pipeline short(a: Int = 1) { output a -> \"o\" }",
        "pipeline short(a: Int = 1) {\n  output a -> \"o\"\n}\n",
    );
    check("pipeline nothing { }", "pipeline nothing() {}\n");
}

#[test]
fn a_line_of_exactly_the_width_stays_flat() {
    // 100 columns: `  let x = f(` (12) + 84 + `")` ... measured below.
    let arg = "a".repeat(100 - "  let x = f(\"\")".len());
    let flat = format!("pipeline p() {{\n  let x = f(\"{arg}\")\n}}\n");
    assert_eq!(flat.lines().nth(1).unwrap().len(), 100);
    check(&flat, &flat);
    let arg = format!("{arg}a");
    let long = format!("pipeline p() {{\n  let x = f(\"{arg}\")\n}}\n");
    let broken = format!("pipeline p() {{\n  let x = f(\n    \"{arg}\",\n  )\n}}\n");
    check(&long, &broken);
}

#[test]
fn the_design_sample() {
    let input = r#"
import seismic.{segy, rms_normalize}
import nn.{autoencoder, dense, relu, adam, mse}
import vector.hnsw

/// 32-d embeddings of every trace of a survey, indexed for similarity search.
pipeline trace_embeddings(survey: Path = "data/synthetic.sgy", dim: Int = 32) {
  let cube   = segy(survey, inline_byte: 189, crossline_byte: 193)    // Volume[il, xl, t] @ 4 ms
  let traces = rms_normalize(cube.traces)                             // Traces[n, t]
  let ae     = autoencoder(encoder: [dense(128), relu, dense(64), relu, dense(dim)])
  let fit    = train(ae, on: traces, epochs: 20, batch: 256, optimizer: adam(lr: 1e-3), loss: mse, seed: 7)
  let index  = hnsw(fit.encode(traces))                               // Index[dim]
  output index -> "out/traces.index"
}
"#;
    let expected = r#"import seismic.{segy, rms_normalize}
import nn.{autoencoder, dense, relu, adam, mse}
import vector.hnsw

/// 32-d embeddings of every trace of a survey, indexed for similarity search.
pipeline trace_embeddings(survey: Path = "data/synthetic.sgy", dim: Int = 32) {
  let cube = segy(survey, inline_byte: 189, crossline_byte: 193) // Volume[il, xl, t] @ 4 ms
  let traces = rms_normalize(cube.traces) // Traces[n, t]
  let ae = autoencoder(encoder: [dense(128), relu, dense(64), relu, dense(dim)])
  let fit = train(
    ae,
    on: traces,
    epochs: 20,
    batch: 256,
    optimizer: adam(lr: 1e-3),
    loss: mse,
    seed: 7,
  )
  let index = hnsw(fit.encode(traces)) // Index[dim]
  output index -> "out/traces.index"
}
"#;
    check(input, expected);
}

#[test]
fn syntax_errors_are_refused() {
    let err = format_source("pipeline p() {\n  let x = \n}\n").unwrap_err();
    assert!(err.message.contains("syntax error"), "{err}");
    assert!(err.message.contains(" at 2:10"), "{err}");
    let err = format_source("fn f(x: Int) -> Int { x }\nfn (").unwrap_err();
    assert!(err.message.contains("syntax error"), "{err}");
    let err = format_source("pipeline p() { let s = \"abc }\n").unwrap_err();
    assert!(
        err.to_string().contains("E0002") || err.to_string().contains("E0001"),
        "{err}"
    );
}

#[test]
fn deep_but_valid_input_formats() {
    let nested = format!(
        "pipeline p() {{\n  let x = {}1{}\n}}\n",
        "f(".repeat(40),
        ")".repeat(40)
    );
    let out = format_source(&nested).unwrap();
    assert_eq!(format_source(&out).unwrap(), out);
    let long = format!("pipeline p() {{\n  let x = 1{}\n}}\n", " + 1".repeat(400));
    let out = format_source(&long).unwrap();
    assert_eq!(format_source(&out).unwrap(), out);
}
