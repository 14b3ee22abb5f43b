//! Loader tests on files written to a temporary folder.

use std::path::{Path, PathBuf};

use mlp_text::load::{self, document_id, Format};
use mlp_text::TextError;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn utf8_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "a.txt", "héllo wörld\n".as_bytes());
    let d = load::load_text(&p).unwrap();
    assert_eq!(d.text, "héllo wörld\n");
    assert_eq!(d.path, p);
    assert_eq!(d.id, document_id(&p.to_string_lossy(), &d.text));
    assert_eq!(d.id.len(), 16);
    assert_eq!(d.metadata["format"], "text");
    // Deterministic.
    assert_eq!(load::load_text(&p).unwrap(), d);
}

#[test]
fn utf8_bom_is_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice("ça va".as_bytes());
    let p = write(dir.path(), "bom.txt", &bytes);
    assert_eq!(load::load_text(&p).unwrap().text, "ça va");
}

#[test]
fn utf16_with_bom_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Grüße 𝄞 中文";
    let mut le = vec![0xFF, 0xFE];
    let mut be = vec![0xFE, 0xFF];
    for u in text.encode_utf16() {
        le.extend_from_slice(&u.to_le_bytes());
        be.extend_from_slice(&u.to_be_bytes());
    }
    let p = write(dir.path(), "le.txt", &le);
    assert_eq!(load::load_text(&p).unwrap().text, text);
    let p = write(dir.path(), "be.txt", &be);
    assert_eq!(load::load_text(&p).unwrap().text, text);
}

#[test]
fn utf16_unpaired_surrogate_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // BOM, 'a', lone high surrogate, 'b'.
    let bytes = [0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'b', 0];
    let p = write(dir.path(), "bad16.txt", &bytes);
    let e = load::load_text(&p).unwrap_err();
    assert!(
        matches!(
            e,
            TextError::Encoding {
                offset: 4,
                encoding: "UTF-16LE",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn latin1_is_rejected_with_offset() {
    let dir = tempfile::tempdir().unwrap();
    // "café" in Latin-1: é is 0xE9 at offset 3.
    let p = write(dir.path(), "latin1.txt", b"caf\xE9 au lait");
    let e = load::load_text(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, TextError::Encoding { offset: 3, .. }), "{e:?}");
    assert!(msg.contains("latin1.txt"), "{msg}");
    assert!(msg.contains("byte offset 3"), "{msg}");
}

#[test]
fn binary_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "x.bin", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let e = load::load_text(&p).unwrap_err();
    assert!(e.to_string().contains("binary file"), "{e}");
    assert!(e.to_string().contains("x.bin"), "{e}");
}

#[test]
fn empty_and_blank_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("e.txt", &b""[..]), ("w.txt", &b"  \n\t\n"[..])] {
        let p = write(dir.path(), name, bytes);
        let e = load::load_text(&p).unwrap_err();
        assert!(e.to_string().ends_with("empty document"), "{e}");
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let e = load::load_text(Path::new("/nonexistent/zzz.txt")).unwrap_err();
    assert!(matches!(e, TextError::Io { .. }));
    assert!(e.to_string().contains("zzz.txt"));
}

#[test]
fn markdown_headings_in_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let src = "Intro\n\n# Guide #\n\ntext\n\n## Install\n\n```sh\n# comment, not heading\n```\n\n#nospace\n";
    let p = write(dir.path(), "g.md", src.as_bytes());
    let d = load::load_markdown(&p).unwrap();
    assert_eq!(d.text, src);
    assert_eq!(d.metadata["title"], "Guide");
    assert_eq!(d.metadata["headings"], "# Guide\n## Install");
    assert_eq!(d.metadata["format"], "markdown");
}

#[test]
fn html_drops_script_and_style() {
    let dir = tempfile::tempdir().unwrap();
    let src = r#"<!doctype html><html><head><title> My  Page </title>
<style>body { color: red }</style><script>var secret = 1;</script></head>
<body><h1>Hello</h1><p>First <b>bold</b>   para.</p>
<script>alert("x")</script><noscript>enable js</noscript>
<ul><li>one</li><li>two</li></ul><pre>  keep
   spacing</pre></body></html>"#;
    let p = write(dir.path(), "p.html", src.as_bytes());
    let d = load::load_html(&p).unwrap();
    assert_eq!(d.metadata["title"], "My Page");
    assert!(!d.text.contains("secret"), "{}", d.text);
    assert!(!d.text.contains("alert"), "{}", d.text);
    assert!(!d.text.contains("color"), "{}", d.text);
    assert!(!d.text.contains("enable js"), "{}", d.text);
    assert!(!d.text.contains("My Page"), "{}", d.text);
    assert!(
        d.text.starts_with("Hello\n\nFirst bold para."),
        "{}",
        d.text
    );
    assert!(d.text.contains("one\ntwo"), "{}", d.text);
    assert!(d.text.contains("keep\nspacing"), "{}", d.text);
}

#[test]
fn html_without_text_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.html", b"<html><script>x()</script></html>");
    let e = load::load_html(&p).unwrap_err();
    assert!(e.to_string().contains("empty document"), "{e}");
}

#[test]
fn jsonl_documents() {
    let dir = tempfile::tempdir().unwrap();
    let src = "{\"body\": \"first\", \"lang\": \"en\", \"n\": 3}\n\n{\"body\": \"second\"}\n";
    let p = write(dir.path(), "d.jsonl", src.as_bytes());
    let docs = load::load_jsonl(&p, "body").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].text, "first");
    assert_eq!(docs[0].metadata["lang"], "en");
    assert_eq!(docs[0].metadata["n"], "3");
    assert_eq!(docs[0].metadata["line"], "1");
    assert_eq!(docs[1].metadata["line"], "3");
    let key = format!("{}:3", p.to_string_lossy());
    assert_eq!(docs[1].id, document_id(&key, "second"));
    assert_ne!(docs[0].id, docs[1].id);
}

#[test]
fn jsonl_same_text_on_two_lines_gets_two_ids() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.jsonl", b"{\"t\":\"x\"}\n{\"t\":\"x\"}\n");
    let docs = load::load_jsonl(&p, "t").unwrap();
    assert_ne!(docs[0].id, docs[1].id);
}

#[test]
fn jsonl_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "m.jsonl",
            b"{\"text\":\"a\"}\n{\"other\":1}\n",
            ":2: field `text` missing",
        ),
        (
            "j.jsonl",
            b"{\"text\":\"a\"}\nnot json\n",
            ":2: invalid JSON",
        ),
        (
            "n.jsonl",
            b"{\"text\":5}\n",
            ":1: field `text` is not a string",
        ),
        ("a.jsonl", b"[1,2]\n", ":1: record is not a JSON object"),
    ];
    for (name, bytes, want) in cases {
        let p = write(dir.path(), name, bytes);
        let e = load::load_jsonl(&p, "text").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(name) && msg.contains(want), "{msg}");
    }
}

#[test]
fn glob_over_folders() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b/two.md", b"# Two\nbody");
    write(dir.path(), "a/one.txt", b"one");
    write(dir.path(), "a/deep/three.html", b"<p>three</p>");
    write(
        dir.path(),
        "c/four.jsonl",
        b"{\"text\":\"four\"}\n{\"text\":\"five\"}",
    );
    std::fs::create_dir_all(dir.path().join("d.txt")).unwrap(); // a folder named like a file
    let pattern = format!("{}/**/*", dir.path().display());
    let docs = load::load_glob(&pattern, "text").unwrap();
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(texts, ["three", "one", "# Two\nbody", "four", "five"]);
    assert_eq!(docs[2].metadata["title"], "Two");
    assert_eq!(docs[0].metadata["format"], "html");
}

#[test]
fn glob_with_binary_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.txt", b"fine");
    write(dir.path(), "img.txt", b"GIF89a\0\0\0");
    let pattern = format!("{}/*.txt", dir.path().display());
    let e = load::load_glob(&pattern, "text").unwrap_err();
    assert!(e.to_string().contains("img.txt: binary file"), "{e}");
}

#[test]
fn glob_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = load::load_glob(&format!("{}/*.none", dir.path().display()), "text").unwrap_err();
    assert!(e.to_string().contains("matched no files"), "{e}");
    let e = load::load_glob("[", "text").unwrap_err();
    assert!(matches!(e, TextError::Glob { .. }), "{e:?}");
}

#[test]
fn format_by_extension() {
    assert_eq!(Format::for_path(Path::new("x.MD"), "t"), Format::Markdown);
    assert_eq!(Format::for_path(Path::new("x.htm"), "t"), Format::Html);
    assert_eq!(
        Format::for_path(Path::new("x.ndjson"), "t"),
        Format::JsonLines { field: "t".into() }
    );
    assert_eq!(Format::for_path(Path::new("x"), "t"), Format::Text);
}
