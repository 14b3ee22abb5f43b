//! The streaming chunker against the in-memory loader and chunkers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlp_text::chunk::{self, ChunkConfig, DEFAULT_SEPARATORS};
use mlp_text::load;
use mlp_text::stream::{chunk_file_streaming, chunk_file_streaming_with_window, StreamStrategy};
use mlp_text::{Chunk, TextError, WhitespaceTokenizer};
use proptest::prelude::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn stream(
    path: &Path,
    cfg: &ChunkConfig,
    strategy: StreamStrategy<'_>,
    window: usize,
) -> Result<(Vec<Chunk>, mlp_text::StreamReport), TextError> {
    let mut out = Vec::new();
    let report = chunk_file_streaming_with_window(path, cfg, strategy, window, |c| {
        out.push(c);
        Ok(())
    })?;
    Ok((out, report))
}

fn in_memory(doc: &load::Document, cfg: &ChunkConfig, strategy: StreamStrategy<'_>) -> Vec<Chunk> {
    match strategy {
        StreamStrategy::Fixed => chunk::fixed(&doc.id, &doc.text, cfg).unwrap(),
        StreamStrategy::Recursive(seps) => {
            chunk::recursive_with(&doc.id, &doc.text, cfg, seps).unwrap()
        }
    }
}

/// Text with multibyte characters, separators (some repeated, so that
/// self-overlapping separators matter) and long runs without any separator.
fn text_strategy() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        "[a-z]{1,8}",
        "[a-z]{20,90}",
        "[éßж€𝄞中]{1,30}",
        Just(" ".to_string()),
        Just("  ".to_string()),
        Just("\n".to_string()),
        Just("\n\n".to_string()),
        Just("\n\n\n".to_string()),
        Just(". ".to_string()),
        Just("aaa".to_string()),
        "( [a-z]{1,5}){5,30}",
        "(\n[a-zé]{1,5}){5,30}",
        "(\\. [a-z ]{1,9}){3,12}",
        "\\PC{0,6}",
    ];
    prop::collection::vec(atom, 0..40).prop_map(|v| v.concat())
}

const ODD_SEPARATORS: &[&str] = &["\n\n", "aa", "", "\n", "é", " "];

fn strategy_for(k: u8) -> StreamStrategy<'static> {
    match k % 4 {
        0 => StreamStrategy::Fixed,
        1 | 2 => StreamStrategy::RECURSIVE,
        _ => StreamStrategy::Recursive(ODD_SEPARATORS),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Same chunks (ranges, texts, ids) and document id as loading the file
    /// and chunking in memory, for windows far smaller than the text.
    #[test]
    fn streaming_equals_in_memory(
        text in text_strategy(),
        (size, overlap) in (1usize..12).prop_flat_map(|s| (Just(s), 0..s)),
        window in 1usize..80,
        k in any::<u8>(),
        bom in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        if bom {
            bytes.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
        }
        bytes.extend_from_slice(text.as_bytes());
        let p = write(dir.path(), "t.txt", &bytes);
        let cfg = ChunkConfig::chars(size, overlap);
        let strategy = strategy_for(k);
        let streamed = stream(&p, &cfg, strategy, window);
        match load::load_text(&p) {
            Err(TextError::Empty { .. }) => {
                let empty = matches!(streamed, Err(TextError::Empty { .. }));
                prop_assert!(empty, "expected Empty, got {:?}", streamed);
            }
            Err(e) => panic!("unexpected load error {e}"),
            Ok(doc) => {
                let (chunks, report) = streamed.unwrap();
                let expected = in_memory(&doc, &cfg, strategy);
                prop_assert_eq!(&report.doc_id, &doc.id);
                prop_assert_eq!(report.text_bytes, doc.text.len() as u64);
                prop_assert_eq!(report.chunks, expected.len());
                prop_assert_eq!(chunks, expected);
            }
        }
    }

    /// Invalid UTF-8 anywhere: the same error (and byte offset) as the loader.
    #[test]
    fn invalid_utf8_same_error_as_loader(
        text in "[a-zé中 ]{0,200}",
        at in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![vec![0xFFu8], vec![0xC3], vec![0xE4, 0xB8], vec![0x80]]),
        window in 1usize..40,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = text.into_bytes();
        let mut i = at.index(bytes.len() + 1);
        while i < bytes.len() && (bytes[i] & 0xC0) == 0x80 {
            i += 1;
        }
        for (j, b) in bad.iter().enumerate() {
            bytes.insert(i + j, *b);
        }
        let p = write(dir.path(), "bad.txt", &bytes);
        let want = match load::load_text(&p) {
            Err(TextError::Encoding { offset, .. }) => offset,
            other => panic!("loader accepted invalid UTF-8: {other:?}"),
        };
        let got = stream(&p, &ChunkConfig::chars(5, 1), StreamStrategy::RECURSIVE, window);
        match got {
            Err(TextError::Encoding { offset, encoding, .. }) => {
                prop_assert_eq!(offset, want);
                prop_assert_eq!(encoding, "UTF-8");
            }
            other => panic!("streaming accepted invalid UTF-8: {other:?}"),
        }
    }
}

/// Text with a deterministic pseudo-random mix of words, sentences and
/// paragraphs (`lines: false`: a single line).
fn generated(len: usize, lines: bool, seed: u64) -> String {
    let mut x = seed;
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word_len = 1 + (x % 9) as usize;
        for i in 0..word_len {
            out.push(if (x >> (8 + i)) % 29 == 0 {
                'é'
            } else {
                (b'a' + ((x >> (3 * i)) % 26) as u8) as char
            });
        }
        match (x >> 40) % 50 {
            0 if lines => out.push_str(".\n\n"),
            1 | 2 if lines => out.push('\n'),
            3..=5 => out.push_str(". "),
            _ => out.push(' '),
        }
    }
    out
}

#[test]
fn megabytes_single_line_equal_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    for (lines, seed) in [(false, 7), (true, 11)] {
        let text = generated(3 << 20, lines, seed);
        let p = write(dir.path(), "big.txt", text.as_bytes());
        let doc = load::load_text(&p).unwrap();
        for (cfg, strategy) in [
            (ChunkConfig::chars(500, 50), StreamStrategy::RECURSIVE),
            (ChunkConfig::chars(300, 40), StreamStrategy::Fixed),
        ] {
            let (chunks, report) = stream(&p, &cfg, strategy, 64 * 1024).unwrap();
            assert_eq!(report.doc_id, doc.id);
            assert!(chunks == in_memory(&doc, &cfg, strategy), "chunks differ");
            assert!(
                report.peak_buffer_bytes < 512 * 1024,
                "peak {} bytes for a 64 KiB window",
                report.peak_buffer_bytes
            );
        }
    }
}

/// A terminator at every position relative to every window edge: the
/// stretch before it is longer than the window, so it ends a streamed frame.
#[test]
fn terminators_straddling_window_edges() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ChunkConfig::chars(3, 1);
    for i in 0..70 {
        for term in ["\n\n", "aa", "\n", ". "] {
            let text = format!(
                "{}{term}{}\n\n\n{}",
                "b c".repeat(i / 3 + 5),
                "xy ".repeat(i % 9 + 4),
                "d".repeat(i)
            );
            let p = write(dir.path(), "t.txt", text.as_bytes());
            let doc = load::load_text(&p).unwrap();
            for strategy in [
                StreamStrategy::RECURSIVE,
                StreamStrategy::Recursive(ODD_SEPARATORS),
            ] {
                let expected = in_memory(&doc, &cfg, strategy);
                for window in 1..40 {
                    let (chunks, _) = stream(&p, &cfg, strategy, window).unwrap();
                    assert!(chunks == expected, "{text:?} window {window}");
                }
            }
        }
    }
}

#[test]
fn file_without_any_separator() {
    let dir = tempfile::tempdir().unwrap();
    let text = "x€".repeat(5000);
    let p = write(dir.path(), "nosep.txt", text.as_bytes());
    let doc = load::load_text(&p).unwrap();
    let cfg = ChunkConfig::chars(7, 3);
    for window in [1, 29, 30, 31, 1000] {
        let (chunks, _) = stream(&p, &cfg, StreamStrategy::RECURSIVE, window).unwrap();
        assert_eq!(chunks, chunk::recursive(&doc.id, &doc.text, &cfg).unwrap());
    }
}

#[test]
fn default_window_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "a.txt",
        b"one two three. four five six.\n\nseven eight",
    );
    let mut n = 0;
    let report = chunk_file_streaming(
        &p,
        &ChunkConfig::chars(16, 6),
        StreamStrategy::RECURSIVE,
        |c| {
            assert_eq!(c.index, n);
            n += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(report.chunks, 3);
    assert_eq!(report.text_bytes, 42);
    assert_eq!(report.window_bytes, mlp_text::stream::DEFAULT_WINDOW_BYTES);
    assert_eq!(report.path, p);
    assert_eq!(report.doc_id, load::load_text(&p).unwrap().id);
}

#[test]
fn window_is_raised_to_four_times_size() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "a.txt", b"abc");
    let (_, r) = stream(&p, &ChunkConfig::chars(100, 0), StreamStrategy::Fixed, 10).unwrap();
    assert_eq!(r.window_bytes, 400);
}

#[test]
fn errors_match_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ChunkConfig::chars(10, 2);
    let s = StreamStrategy::RECURSIVE;
    let p = write(dir.path(), "bin.txt", b"abc\0def");
    assert!(matches!(
        stream(&p, &cfg, s, 8),
        Err(TextError::Binary { offset: 3, .. })
    ));
    let p = write(dir.path(), "blank.txt", b" \n\t \n");
    assert!(matches!(
        stream(&p, &cfg, s, 8),
        Err(TextError::Empty { .. })
    ));
    let p = write(dir.path(), "empty.txt", b"");
    assert!(matches!(
        stream(&p, &cfg, s, 8),
        Err(TextError::Empty { .. })
    ));
    let p = write(dir.path(), "u16.txt", &[0xFF, 0xFE, b'a', 0]);
    let e = stream(&p, &cfg, s, 8).unwrap_err();
    assert!(
        e.to_string().contains("UTF-16 text cannot be streamed"),
        "{e}"
    );
    // A character cut by the end of the file.
    let p = write(dir.path(), "cut.txt", &[b'a', b'b', 0xE4, 0xB8]);
    assert!(matches!(
        stream(&p, &cfg, s, 1),
        Err(TextError::Encoding { offset: 2, .. })
    ));
    // BOM: offsets count it, as the loader's do.
    let p = write(dir.path(), "bom.txt", &[0xEF, 0xBB, 0xBF, b'a', 0xFF]);
    assert!(matches!(
        stream(&p, &cfg, s, 1),
        Err(TextError::Encoding { offset: 4, .. })
    ));
    let missing = dir.path().join("missing.txt");
    assert!(matches!(
        stream(&missing, &cfg, s, 8),
        Err(TextError::Io { .. })
    ));
}

#[test]
fn bad_config_and_token_units_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "a.txt", b"abc");
    let e = stream(&p, &ChunkConfig::chars(3, 3), StreamStrategy::Fixed, 8).unwrap_err();
    assert!(matches!(e, TextError::Config(_)));
    let tok = ChunkConfig::tokens(3, 1, Arc::new(WhitespaceTokenizer));
    let e = stream(&p, &tok, StreamStrategy::RECURSIVE, 8).unwrap_err();
    assert!(e.to_string().contains("characters only"), "{e}");
}

#[test]
fn callback_error_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "a.txt", "word ".repeat(100).as_bytes());
    let mut seen = 0;
    let e = chunk_file_streaming(
        &p,
        &ChunkConfig::chars(10, 0),
        StreamStrategy::RECURSIVE,
        |_| {
            seen += 1;
            if seen == 3 {
                Err(TextError::Config("stop".into()))
            } else {
                Ok(())
            }
        },
    )
    .unwrap_err();
    assert_eq!(seen, 3);
    assert!(e.to_string().contains("stop"));
}

/// The in-memory loaders refuse what is over their limit and point here.
#[test]
fn loaders_refuse_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "a.txt", &[b'a'; 1000]);
    let opts = load::LoadOptions {
        max_file_bytes: 999,
    };
    let e = load::load_file_with(&p, &load::Format::Text, &opts).unwrap_err();
    assert!(matches!(
        e,
        TextError::TooLarge {
            size: 1000,
            limit: 999,
            ..
        }
    ));
    assert!(e.to_string().contains("chunk_file_streaming"), "{e}");
    let opts = load::LoadOptions {
        max_file_bytes: 1000,
    };
    assert!(load::load_file_with(&p, &load::Format::Text, &opts).is_ok());
    let pattern = format!("{}/*.txt", dir.path().display());
    let small = load::LoadOptions { max_file_bytes: 10 };
    assert!(matches!(
        load::load_glob_with(&pattern, "text", &small),
        Err(TextError::TooLarge { .. })
    ));
    assert_eq!(load::LoadOptions::default().max_file_bytes, 256 << 20);
}

/// Streams a generated 1 GiB single-line file (no newline at all). Run it
/// in release mode under `/usr/bin/time -v` to see the maximum RSS:
///
/// ```text
/// cargo test -p mlp-text --release --test stream -- --ignored --nocapture one_gib
/// /usr/bin/time -v target/release/deps/stream-<hash> --ignored --nocapture one_gib
/// ```
///
/// `MLP_STREAM_GIB_FILE=path` reuses (or keeps) the generated file. Figures
/// of a run are in spec/chunking.md ("Large files: streaming").
#[test]
#[ignore = "writes and streams a 1 GiB file; run by hand (see doc comment)"]
fn one_gib_single_line() {
    const GIB: usize = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("MLP_STREAM_GIB_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("one_line.txt"));
    let started = std::time::Instant::now();
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(GIB as u64) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let block = generated(1 << 20, false, 3);
        let mut written = 0;
        while written + block.len() <= GIB {
            f.write_all(block.as_bytes()).unwrap();
            written += block.len();
        }
        // Pad to exactly 1 GiB with ASCII (the block's end is a word).
        f.write_all("z".repeat(GIB - written).as_bytes()).unwrap();
        f.flush().unwrap();
        eprintln!("generated in {:.1?}", started.elapsed());
    }
    for (name, cfg, strategy) in [
        (
            "recursive",
            ChunkConfig::chars(1000, 100),
            StreamStrategy::RECURSIVE,
        ),
        (
            "fixed",
            ChunkConfig::chars(1000, 100),
            StreamStrategy::Fixed,
        ),
    ] {
        let t = std::time::Instant::now();
        let mut last_end = 0;
        let mut max_len = 0;
        let report = chunk_file_streaming(&path, &cfg, strategy, |c| {
            assert!(
                c.start <= last_end && c.end > last_end,
                "gap or no progress"
            );
            last_end = c.end;
            max_len = max_len.max(c.text.chars().count());
            Ok(())
        })
        .unwrap();
        assert_eq!(report.text_bytes, GIB as u64);
        assert_eq!(last_end, GIB);
        assert!(max_len <= 1000);
        assert!(report.peak_buffer_bytes < 32 << 20, "memory not bounded");
        eprintln!(
            "{name}: {} chunks in {:.1?}, peak buffers {} KiB, window {} KiB",
            report.chunks,
            t.elapsed(),
            report.peak_buffer_bytes / 1024,
            report.window_bytes / 1024
        );
    }
    // Sanity: DEFAULT_SEPARATORS are what RECURSIVE uses.
    assert_eq!(
        StreamStrategy::RECURSIVE,
        StreamStrategy::Recursive(DEFAULT_SEPARATORS)
    );
}
