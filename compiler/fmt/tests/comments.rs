//! Comments survive formatting: same text, same order, in their place, and the result is a
//! fixed point.

use mlp_fmt::format_source;

/// The parser's sample (compiler/syntax/tests/parse.rs) with comments everywhere.
const RICH: &str = r#"// File header.

// Second header paragraph.
import seismic.{segy, rms_normalize} // the readers
import nn.{ // layers
  autoencoder, dense,
  relu, // activation
  adam, mse
}
// vector search
import vector.hnsw

/// 32-d embeddings of every trace of a survey.
/// Second line.
pipeline trace_embeddings(
  /// Where the survey lives.
  survey: Path = "data/synthetic.sgy", // default path
  dim: Int = 32 // embedding size
) { // body starts
  // Read the cube.
  let cube   = segy(survey, inline_byte: 189, crossline_byte: 193)    // Volume[il, xl, t] @ 4 ms
  let traces = rms_normalize(cube.traces)


  /// The model.
  let ae     = autoencoder(encoder: [dense(128), // wide
    relu, dense(64), relu, dense(dim)])
  let fit    = train(ae, on: traces, epochs: 20, batch: 256, optimizer: adam(lr: 1e-3), loss: mse, seed: 7)
  let index  = hnsw(fit.encode(traces))
  let t: Table{date: Date, steel: Float} = csv("x.csv")
  let d = t.derive { r = steel / lag(steel, 12) * 100, // ratio
    x = -steel + 1 }
  let q = [4 ms, 30 d, 256 tokens, 100/s, 10 %, 16 GiB, 2 min] // units
  let w = 1 + // one
    2
  output index -> "out/traces.index"
  deploy endpoint(fit, rate: 100/s) // serve it
  schedule every(1 d)
  // Trailing body comment.
}

// Between items.

fn enc(dim: Int) -> [Layer] {
  // Inside a fn body.
  [dense(128), relu, dense(dim)] // the result
}

@version(2) // bumped
op segy(path: Path, inline_byte: Int = 189) -> Volume[il, xl, t]
op train<M>(model: Model[Traces[n, t] -> Embeddings[d]], on: Traces[n, t]) -> Table{a: Int}
// End of file.
"#;

const RICH_FORMATTED: &str = r#"// File header.

// Second header paragraph.
import seismic.{segy, rms_normalize} // the readers
import nn.{ // layers
  autoencoder,
  dense,
  relu, // activation
  adam,
  mse,
}
// vector search
import vector.hnsw

/// 32-d embeddings of every trace of a survey.
/// Second line.
pipeline trace_embeddings(
  /// Where the survey lives.
  survey: Path = "data/synthetic.sgy", // default path
  dim: Int = 32, // embedding size
) { // body starts
  // Read the cube.
  let cube = segy(survey, inline_byte: 189, crossline_byte: 193) // Volume[il, xl, t] @ 4 ms
  let traces = rms_normalize(cube.traces)

  /// The model.
  let ae = autoencoder(
    encoder: [
      dense(128), // wide
      relu,
      dense(64),
      relu,
      dense(dim),
    ],
  )
  let fit = train(
    ae,
    on: traces,
    epochs: 20,
    batch: 256,
    optimizer: adam(lr: 1e-3),
    loss: mse,
    seed: 7,
  )
  let index = hnsw(fit.encode(traces))
  let t: Table{date: Date, steel: Float} = csv("x.csv")
  let d = t.derive {
    r = steel / lag(steel, 12) * 100, // ratio
    x = -steel + 1,
  }
  let q = [4 ms, 30 d, 256 tokens, 100/s, 10 %, 16 GiB, 2 min] // units
  let w = 1 + // one
    2
  output index -> "out/traces.index"
  deploy endpoint(fit, rate: 100/s) // serve it
  schedule every(1 d)
  // Trailing body comment.
}

// Between items.

fn enc(dim: Int) -> [Layer] {
  // Inside a fn body.
  [dense(128), relu, dense(dim)] // the result
}

@version(2) // bumped
op segy(path: Path, inline_byte: Int = 189) -> Volume[il, xl, t]

op train<M>(model: Model[Traces[n, t] -> Embeddings[d]], on: Traces[n, t]) -> Table{a: Int}
// End of file.
"#;

fn comment_texts(src: &str) -> Vec<String> {
    mlp_syntax::parse(src)
        .file
        .comments
        .iter()
        .map(|c| c.text.trim_end().to_string())
        .collect()
}

#[test]
fn rich_sample_formats_as_expected() {
    let out = format_source(RICH).unwrap();
    assert_eq!(out, RICH_FORMATTED, "\n--- got ---\n{out}");
}

#[test]
fn rich_sample_is_idempotent_and_keeps_every_comment() {
    let once = format_source(RICH).unwrap();
    let twice = format_source(&once).unwrap();
    assert_eq!(once, twice);
    assert_eq!(comment_texts(RICH), comment_texts(&once));
    assert_eq!(comment_texts(RICH).len(), 26);
}

#[test]
fn docs_stay_attached() {
    let before = mlp_syntax::parse(RICH).file;
    let after = mlp_syntax::parse(&format_source(RICH).unwrap()).file;
    let docs = |f: &mlp_syntax::ast::File| -> Vec<Option<String>> {
        f.items.iter().map(|i| i.doc.clone()).collect()
    };
    assert_eq!(docs(&before), docs(&after));
    assert!(docs(&after)[3]
        .as_deref()
        .unwrap()
        .ends_with("Second line."));
}

#[track_caller]
fn check(input: &str, expected: &str) {
    let out = format_source(input).unwrap_or_else(|e| panic!("refused: {e}\n{input}"));
    assert_eq!(
        out, expected,
        "\n--- got ---\n{out}\n--- want ---\n{expected}"
    );
    assert_eq!(format_source(&out).unwrap(), out, "not idempotent");
}

#[test]
fn own_line_comment_before_a_statement_keeps_its_line_and_takes_its_indent() {
    check(
        "pipeline p() {\nlet a = 1\n      // about b\nlet b = 2\n}\n",
        "pipeline p() {\n  let a = 1\n  // about b\n  let b = 2\n}\n",
    );
}

#[test]
fn trailing_comment_stays_at_the_end_of_its_line() {
    check(
        "pipeline p() {\n  let a = 1      // one\n  let b = f(x)// two\n}\n",
        "pipeline p() {\n  let a = 1 // one\n  let b = f(x) // two\n}\n",
    );
}

#[test]
fn comment_inside_a_flat_expression_breaks_it() {
    check(
        "pipeline p() {\n  let a = f(x, // the x\n y)\n  let b = [1, 2 // two\n  ]\n  let c = {a: 1, // a\n b: 2}\n}\n",
        "pipeline p() {\n  let a = f(\n    x, // the x\n    y,\n  )\n  let b = [\n    1,\n    2, // two\n  ]\n  let c = {\n    a: 1, // a\n    b: 2,\n  }\n}\n",
    );
}

#[test]
fn comment_before_an_argument_keeps_its_own_line() {
    check(
        "pipeline p() {\n  let a = f(x,\n // then y\n y)\n}\n",
        "pipeline p() {\n  let a = f(\n    x,\n    // then y\n    y,\n  )\n}\n",
    );
}

#[test]
fn comment_after_an_opening_bracket_stays_there() {
    check(
        "pipeline p() {\n  let a = f( // args\n x)\n}\n",
        "pipeline p() {\n  let a = f( // args\n    x,\n  )\n}\n",
    );
}

#[test]
fn comments_at_the_end_of_a_block_stay_inside() {
    check(
        "pipeline p() {\n  let a = f(x,\n  // no more\n  )\n  // done\n}\n",
        "pipeline p() {\n  let a = f(\n    x,\n    // no more\n  )\n  // done\n}\n",
    );
    check(
        "pipeline p() { // nothing yet\n}\n",
        "pipeline p() { // nothing yet\n}\n",
    );
    check(
        "pipeline p() {\n\n  // todo\n\n}\n",
        "pipeline p() {\n  // todo\n}\n",
    );
}

#[test]
fn comments_inside_an_operator_chain_break_the_line() {
    check(
        "pipeline p() {\n  let a = x // left\n    + y\n  let b = x.\n  // member\n  y\n}\n",
        "pipeline p() {\n  let a = x // left\n    + y\n  let b = x.\n    // member\n    y\n}\n",
    );
}

#[test]
fn a_doc_comment_trailing_an_item_moves_above_the_next_one() {
    // `/// b` documents `b` (it is directly above it): it must keep doing so.
    check(
        "fn a() -> Int { 1 } /// b\nfn b() -> Int { 2 }\n",
        "fn a() -> Int {\n  1\n}\n\n/// b\nfn b() -> Int {\n  2\n}\n",
    );
    check(
        "import a /// x\nimport b\nimport c /// y\n\nimport d\n",
        "import a\n/// x\nimport b\nimport c /// y\n\nimport d\n",
    );
}

#[test]
fn blank_lines_that_separate_a_comment_from_an_item_are_kept() {
    // With the blank line, `/// orphan` documents nothing; without it, it would.
    check(
        "/// orphan\n\nfn a() -> Int { 1 }\n",
        "/// orphan\n\nfn a() -> Int {\n  1\n}\n",
    );
    check(
        "fn a(\n  /// orphan\n\n  x: Int) -> Int { x }\n",
        "fn a(\n  /// orphan\n\n  x: Int,\n) -> Int {\n  x\n}\n",
    );
}

#[test]
fn comment_trailing_whitespace_is_removed() {
    check(
        "// note   \t\nfn a() -> Int { 1 }\n",
        "// note\nfn a() -> Int {\n  1\n}\n",
    );
}

/// Puts a comment at every place the sample has whitespace (trailing code, on a line of its
/// own, and as a doc comment) and checks that each variant formats, keeps its comments in
/// order, and is a fixed point.
#[test]
fn a_comment_anywhere_is_kept() {
    let base = format_source(RICH).unwrap();
    let count = comment_texts(&base).len();
    let mut tried = 0;
    for probe in [" // probe\n", "\n// probe\n", "\n/// probe\n"] {
        for (i, ch) in base.char_indices() {
            if ch != ' ' && ch != '\n' {
                continue;
            }
            let src = format!("{}{probe}{}", &base[..i], &base[i + 1..]);
            let parsed = mlp_syntax::parse(&src);
            // Inside a string or a quantity the probe is not a comment.
            if parsed.diagnostics.iter().any(|d| d.is_error())
                || parsed.file.comments.len() != count + 1
            {
                continue;
            }
            tried += 1;
            let out = format_source(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
            assert_eq!(comment_texts(&src), comment_texts(&out), "{src}");
            let again = format_source(&out).unwrap();
            assert_eq!(out, again, "not idempotent for\n{src}");
        }
    }
    assert!(tried > 900, "{tried}");
}
