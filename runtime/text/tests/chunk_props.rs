//! Property tests of the chunkers against the overlap rule in spec/chunking.md.

use std::sync::Arc;

use mlp_text::chunk::{self, recursive_pieces, ChunkConfig, DEFAULT_SEPARATORS};
use mlp_text::{Chunk, Unit, WhitespaceTokenizer};
use proptest::prelude::*;

/// Text with multibyte characters, separators, sentence ends and headings.
fn text_strategy() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        "[a-z]{1,8}",
        "[éßж€𝄞中文]{1,4}",
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\n\n".to_string()),
        Just(". ".to_string()),
        Just("! ".to_string()),
        Just("。".to_string()),
        Just("\n# Title\n".to_string()),
        Just("\n## Sub\n".to_string()),
        Just("\n```\n# not a heading\n```\n".to_string()),
        "\\PC{0,6}",
    ];
    prop::collection::vec(atom, 0..60).prop_map(|v| v.concat())
}

fn cfg_strategy() -> impl Strategy<Value = (usize, usize)> {
    (1usize..40).prop_flat_map(|size| (Just(size), 0..size))
}

/// The invariants that hold for every chunker (module docs of `chunk`).
fn check_common(text: &str, chunks: &[Chunk], cfg: &ChunkConfig) -> Result<(), TestCaseError> {
    if text.is_empty() {
        prop_assert!(chunks.is_empty());
        return Ok(());
    }
    prop_assert!(!chunks.is_empty());
    prop_assert_eq!(chunks[0].start, 0);
    prop_assert_eq!(chunks.last().unwrap().end, text.len());
    for (i, c) in chunks.iter().enumerate() {
        prop_assert_eq!(c.index, i);
        prop_assert!(c.start < c.end, "empty chunk {}", i);
        prop_assert!(text.is_char_boundary(c.start) && text.is_char_boundary(c.end));
        prop_assert_eq!(c.text.as_str(), &text[c.start..c.end]);
        prop_assert!(
            cfg.unit.measure(&c.text) <= cfg.size,
            "chunk {} too long",
            i
        );
        prop_assert_eq!(&c.id, &chunk::chunk_id("doc", i, &c.text));
    }
    for w in chunks.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        prop_assert!(b.start > a.start, "starts must increase");
        prop_assert!(b.end > a.end, "ends must increase");
        prop_assert!(b.start <= a.end, "gap between chunks");
        let shared = &text[b.start..a.end];
        prop_assert!(cfg.unit.measure(shared) <= cfg.overlap, "overlap too long");
    }
    Ok(())
}

/// Checks that each overlap is the longest run of whole trailing pieces
/// allowed by the rule (pieces given by their boundaries).
fn check_maximal(
    text: &str,
    chunks: &[Chunk],
    bounds: &[usize],
    cfg: &ChunkConfig,
) -> Result<(), TestCaseError> {
    for w in chunks.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let ai = bounds
            .binary_search(&a.end)
            .expect("chunk ends on a piece boundary");
        let bi = bounds
            .binary_search(&b.start)
            .expect("chunk starts on a piece boundary");
        let si = bounds.binary_search(&a.start).unwrap();
        prop_assert!(bi > si && bi <= ai);
        // One more piece back would break (a), (b) or (c).
        if bi - 1 > si {
            let p = bounds[bi - 1];
            let next_end = bounds[ai + 1];
            let too_long = cfg.unit.measure(&text[p..a.end]) > cfg.overlap
                || cfg.unit.measure(&text[p..next_end]) > cfg.size;
            prop_assert!(too_long, "overlap is not maximal at chunk {}", b.index);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn fixed_chunks(text in text_strategy(), (size, overlap) in cfg_strategy()) {
        let cfg = ChunkConfig::chars(size, overlap);
        let chunks = chunk::fixed("doc", &text, &cfg).unwrap();
        check_common(&text, &chunks, &cfg)?;
        let n = chunks.len();
        for (i, c) in chunks.iter().enumerate() {
            if i + 1 < n {
                prop_assert_eq!(c.text.chars().count(), size);
                let shared = &text[chunks[i + 1].start..c.end];
                prop_assert_eq!(shared.chars().count(), overlap);
            }
        }
        prop_assert_eq!(&chunks, &chunk::fixed("doc", &text, &cfg).unwrap());
    }

    #[test]
    fn recursive_chunks(text in text_strategy(), (size, overlap) in cfg_strategy()) {
        let cfg = ChunkConfig::chars(size, overlap);
        let chunks = chunk::recursive("doc", &text, &cfg).unwrap();
        check_common(&text, &chunks, &cfg)?;
        let bounds = recursive_pieces(&text, 0, text.len(), &cfg, DEFAULT_SEPARATORS);
        check_maximal(&text, &chunks, &bounds, &cfg)?;
        prop_assert_eq!(&chunks, &chunk::recursive("doc", &text, &cfg).unwrap());
    }

    #[test]
    fn sentence_chunks(text in text_strategy(), (size, overlap) in cfg_strategy()) {
        let cfg = ChunkConfig::chars(size, overlap);
        let chunks = chunk::sentence("doc", &text, &cfg).unwrap();
        check_common(&text, &chunks, &cfg)?;
    }

    #[test]
    fn markdown_chunks(text in text_strategy(), (size, overlap) in cfg_strategy()) {
        let cfg = ChunkConfig::chars(size, overlap);
        let chunks = chunk::markdown("doc", &text, &cfg).unwrap();
        check_common(&text, &chunks, &cfg)?;
        // No chunk contains a heading line other than at its very start.
        let heads = mlp_text::load::markdown_headings(&text);
        for c in &chunks {
            for h in &heads {
                prop_assert!(!(h.start > c.start && h.start < c.end),
                    "chunk {} spans heading at {}", c.index, h.start);
            }
        }
    }

    #[test]
    fn token_chunks(text in text_strategy(), (size, overlap) in cfg_strategy()) {
        let cfg = ChunkConfig::tokens(size, overlap, Arc::new(WhitespaceTokenizer));
        let chunks = chunk::recursive("doc", &text, &cfg).unwrap();
        check_common(&text, &chunks, &cfg)?;
        let bounds = recursive_pieces(&text, 0, text.len(), &cfg, DEFAULT_SEPARATORS);
        check_maximal(&text, &chunks, &bounds, &cfg)?;
        prop_assert!(matches!(cfg.unit, Unit::Tokens(_)));
    }
}

#[test]
fn fixed_example() {
    let cfg = ChunkConfig::chars(4, 1);
    let c = chunk::fixed("d", "abcdefghij", &cfg).unwrap();
    let spans: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(spans, ["abcd", "defg", "ghij"]);
}

#[test]
fn recursive_keeps_paragraphs_and_overlaps_whole_pieces() {
    let text = "one two three. four five six.\n\nseven eight";
    let cfg = ChunkConfig::chars(16, 6);
    let c = chunk::recursive("d", text, &cfg).unwrap();
    let spans: Vec<(usize, usize, &str)> = c
        .iter()
        .map(|c| (c.start, c.end, c.text.as_str()))
        .collect();
    // Pieces: "one two three. " | "four five six.\n" | "\n" | "seven eight".
    // Chunk 1 cannot overlap chunk 0 (its only piece is its first piece);
    // chunk 2 overlaps chunk 1 by its last whole piece "\n" (1 <= 6), and
    // one more piece back would be chunk 1's first piece.
    assert_eq!(
        spans,
        [
            (0, 15, "one two three. "),
            (15, 31, "four five six.\n\n"),
            (30, 42, "\nseven eight"),
        ]
    );
}

#[test]
fn recursive_word_overlap() {
    let text = "aa bb cc dd ee ff gg";
    let c = chunk::recursive("d", text, &ChunkConfig::chars(9, 3)).unwrap();
    let spans: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(spans, ["aa bb cc ", "cc dd ee ", "ee ff gg"]);
}

#[test]
fn markdown_heading_path() {
    let text = "intro\n# A\nalpha\n## B\nbeta\n# C\ngamma\n";
    let c = chunk::markdown("d", text, &ChunkConfig::chars(100, 10)).unwrap();
    let paths: Vec<Option<&str>> = c
        .iter()
        .map(|c| c.metadata.get("heading_path").map(String::as_str))
        .collect();
    assert_eq!(paths, [None, Some("A"), Some("A > B"), Some("C")]);
}

#[test]
fn bad_config_is_an_error() {
    assert!(chunk::fixed("d", "abc", &ChunkConfig::chars(0, 0)).is_err());
    let e = chunk::fixed("d", "abc", &ChunkConfig::chars(3, 3)).unwrap_err();
    assert!(e
        .to_string()
        .contains("overlap (3) must be less than size (3)"));
}

#[test]
fn ids_depend_on_doc_index_and_text() {
    let a = chunk::chunk_id("d", 0, "x");
    assert_eq!(a.len(), 16);
    assert_ne!(a, chunk::chunk_id("e", 0, "x"));
    assert_ne!(a, chunk::chunk_id("d", 1, "x"));
    assert_ne!(a, chunk::chunk_id("d", 0, "y"));
}

#[test]
fn truncation_warnings_name_the_chunk() {
    let text = "a b c d e f g h";
    let c = chunk::fixed("d", text, &ChunkConfig::chars(8, 0)).unwrap();
    let w = chunk::truncation_warnings(&c, &WhitespaceTokenizer, 3);
    assert_eq!(w.len(), 2);
    assert_eq!(
        (w[0].index, w[0].start, w[0].end, w[0].tokens),
        (0, 0, 8, 4)
    );
    assert!(w[0]
        .to_string()
        .contains("chunk 0 of document d (bytes 0..8) has 4 tokens"));
    let tok = ChunkConfig::tokens(3, 1, Arc::new(WhitespaceTokenizer));
    let c = chunk::recursive("d", text, &tok).unwrap();
    assert!(chunk::truncation_warnings(&c, &WhitespaceTokenizer, 3).is_empty());
}
