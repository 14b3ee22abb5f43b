//! The retrieval evaluation set over the project's documentation
//! (`examples/rag/questions.jsonl`) stays valid as the docs change: every
//! quote is an exact, unique substring of its file, so its byte range (what
//! retrieved chunks are graded against) is well defined.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use mlp_text::chunk::{self, ChunkConfig};
use mlp_text::load;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A relevant passage: the file and the byte range of the quote in it.
struct Passage {
    path: String,
    start: usize,
    end: usize,
}

struct Question {
    id: String,
    relevant: Vec<Passage>,
}

fn load_set() -> Vec<Question> {
    let root = repo_root();
    let file = root.join("examples/rag/questions.jsonl");
    let text = std::fs::read_to_string(&file).expect("examples/rag/questions.jsonl exists");
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            problems.push(format!("line {n}: blank line"));
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("line {n}: invalid JSON: {e}"));
                continue;
            }
        };
        let obj = v.as_object().expect("each line is a JSON object");
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["id", "question", "relevant"]),
            "line {n}: fields must be exactly id, question, relevant"
        );
        let id = obj["id"].as_str().unwrap_or_default().to_string();
        let ok_id =
            id.len() >= 2 && id.starts_with('q') && id[1..].chars().all(|c| c.is_ascii_digit());
        if !ok_id {
            problems.push(format!("line {n}: id {id:?} is not q<digits>"));
        }
        let question = obj["question"].as_str().unwrap_or_default();
        if question.trim().len() < 10 {
            problems.push(format!("{id}: question missing or too short"));
        }
        let rel = obj["relevant"].as_array().cloned().unwrap_or_default();
        if !(1..=3).contains(&rel.len()) {
            problems.push(format!(
                "{id}: {} relevant passages (want 1 to 3)",
                rel.len()
            ));
        }
        let mut relevant = Vec::new();
        for r in &rel {
            let path = r["path"].as_str().unwrap_or_default().to_string();
            let quote = r["quote"].as_str().unwrap_or_default();
            let p = Path::new(&path);
            let in_corpus =
                path == "README.md" || (path.starts_with("spec/") && path.ends_with(".md"));
            let plain = p.components().all(|c| matches!(c, Component::Normal(_)));
            if !in_corpus || !plain {
                problems.push(format!(
                    "{id}: path {path:?} is not README.md or spec/**/*.md relative to the repo root"
                ));
                continue;
            }
            let n_chars = quote.chars().count();
            if !(30..=200).contains(&n_chars) {
                problems.push(format!(
                    "{id}: quote of {n_chars} characters (want 30 to 200): {quote:?}"
                ));
            }
            let body = match std::fs::read_to_string(root.join(p)) {
                Ok(b) => b,
                Err(e) => {
                    problems.push(format!("{id}: cannot read {path}: {e}"));
                    continue;
                }
            };
            let hits: Vec<usize> = body.match_indices(quote).map(|(i, _)| i).collect();
            match hits.as_slice() {
                [start] => relevant.push(Passage {
                    path: path.clone(),
                    start: *start,
                    end: start + quote.len(),
                }),
                [] => problems.push(format!(
                    "{id}: quote no longer in {path} (the docs changed? update the quote): {quote:?}"
                )),
                _ => problems.push(format!(
                    "{id}: quote occurs {} times in {path}; make it unique: {quote:?}",
                    hits.len()
                )),
            }
        }
        out.push(Question { id, relevant });
    }
    assert!(
        problems.is_empty(),
        "questions.jsonl:\n{}",
        problems.join("\n")
    );
    out
}

#[test]
fn every_quote_is_an_exact_unique_substring() {
    let set = load_set();
    assert!(set.len() >= 30, "only {} questions", set.len());
    let ids: BTreeSet<&str> = set.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids.len(), set.len(), "duplicate question ids");
}

/// Grading as examples/rag/README.md defines it works on the real corpus: a
/// chunker run over each file yields, for every question, at least one
/// chunk whose byte range overlaps a relevant quote's range.
#[test]
fn every_question_has_a_relevant_chunk() {
    let set = load_set();
    let root = repo_root();
    let files: BTreeSet<&str> = set
        .iter()
        .flat_map(|q| q.relevant.iter().map(|p| p.path.as_str()))
        .collect();
    let cfg = ChunkConfig::chars(1000, 100);
    let mut chunks = std::collections::BTreeMap::new();
    for f in files {
        let doc = load::load_markdown(&root.join(f)).unwrap();
        chunks.insert(f, chunk::recursive(&doc.id, &doc.text, &cfg).unwrap());
    }
    for q in &set {
        let grade = |c: &mlp_text::Chunk, path: &str| {
            q.relevant
                .iter()
                .any(|p| p.path == path && c.start < p.end && p.start < c.end)
        };
        let relevant: usize = chunks
            .iter()
            .map(|(path, cs)| cs.iter().filter(|c| grade(c, path)).count())
            .sum();
        assert!(
            relevant >= 1,
            "{}: no chunk overlaps a relevant quote",
            q.id
        );
    }
}
