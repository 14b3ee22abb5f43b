//! PDF loading on PDFs written in the test with `lopdf` (re-exported by
//! `pdf-extract`): no binary fixtures.

use std::path::{Path, PathBuf};

use mlp_text::load::{self, document_id, Format};
use mlp_text::TextError;
use pdf_extract::content::{Content, Operation};
use pdf_extract::{
    Dictionary, Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream,
    StringFormat,
};
use proptest::prelude::*;

fn name(s: &str) -> Object {
    Object::Name(s.as_bytes().to_vec())
}

fn dict(entries: Vec<(&str, Object)>) -> Dictionary {
    let mut d = Dictionary::new();
    for (k, v) in entries {
        d.set(k, v);
    }
    d
}

/// A PDF document with one page per entry of `pages`; each page shows its
/// lines in Helvetica, or (for `None`) only draws a line (no text).
fn pdf_doc(pages: &[Option<&[&str]>], title: Option<&str>) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dict(vec![
        ("Type", name("Font")),
        ("Subtype", name("Type1")),
        ("BaseFont", name("Helvetica")),
    ]));
    let resources_id = doc.add_object(dict(vec![(
        "Font",
        Object::Dictionary(dict(vec![("F1", Object::Reference(font_id))])),
    )]));
    let mut kids = Vec::new();
    for page in pages {
        let mut ops = Vec::new();
        match page {
            Some(lines) => {
                ops.push(Operation::new("BT", vec![]));
                ops.push(Operation::new("Tf", vec![name("F1"), 12.into()]));
                ops.push(Operation::new("TL", vec![16.into()]));
                ops.push(Operation::new("Td", vec![72.into(), 720.into()]));
                for line in *lines {
                    ops.push(Operation::new(
                        "Tj",
                        vec![Object::String(
                            line.as_bytes().to_vec(),
                            StringFormat::Literal,
                        )],
                    ));
                    ops.push(Operation::new("T*", vec![]));
                }
                ops.push(Operation::new("ET", vec![]));
            }
            None => {
                ops.push(Operation::new("m", vec![10.into(), 10.into()]));
                ops.push(Operation::new("l", vec![300.into(), 300.into()]));
                ops.push(Operation::new("S", vec![]));
            }
        }
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(Dictionary::new(), content.encode().unwrap()));
        let page_id = doc.add_object(dict(vec![
            ("Type", name("Page")),
            ("Parent", Object::Reference(pages_id)),
            ("Contents", Object::Reference(content_id)),
        ]));
        kids.push(Object::Reference(page_id));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dict(vec![
            ("Type", name("Pages")),
            ("Kids", Object::Array(kids)),
            ("Count", count.into()),
            ("Resources", Object::Reference(resources_id)),
            (
                "MediaBox",
                Object::Array(vec![0.into(), 0.into(), 612.into(), 792.into()]),
            ),
        ])),
    );
    let catalog_id = doc.add_object(dict(vec![
        ("Type", name("Catalog")),
        ("Pages", Object::Reference(pages_id)),
    ]));
    doc.trailer.set("Root", Object::Reference(catalog_id));
    if let Some(t) = title {
        let info = doc.add_object(dict(vec![(
            "Title",
            Object::String(t.as_bytes().to_vec(), StringFormat::Literal),
        )]));
        doc.trailer.set("Info", Object::Reference(info));
    }
    doc
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn two_pages() -> Vec<u8> {
    save(pdf_doc(
        &[
            Some(&["Seismic data arrives as SEG-Y.", "Traces have headers."]),
            Some(&["Chunking splits text into pieces."]),
        ],
        Some("Field Notes"),
    ))
}

#[test]
fn text_pages_and_title() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "notes.pdf", &two_pages());
    let d = load::load_pdf(&p).unwrap();
    assert!(
        d.text.contains("Seismic data arrives as SEG-Y."),
        "{:?}",
        d.text
    );
    assert!(d.text.contains("Traces have headers."), "{:?}", d.text);
    assert!(
        d.text.contains("Chunking splits text into pieces."),
        "{:?}",
        d.text
    );
    assert_eq!(d.metadata["format"], "pdf");
    assert_eq!(d.metadata["pages"], "2");
    assert_eq!(d.metadata["title"], "Field Notes");
    let starts: Vec<usize> = d.metadata["page_starts"]
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0], 0);
    // Page 2 starts where its text does, after a blank line.
    assert!(d.text[starts[1]..].starts_with("Chunking"), "{:?}", d.text);
    assert!(d.text[..starts[1]].ends_with("\n\n"));
    assert!(d.text[..starts[1]]
        .trim_end()
        .ends_with("Traces have headers."));
    assert_eq!(d.id, document_id(&p.to_string_lossy(), &d.text));
    // Deterministic, and chosen by extension in load_file/load_glob.
    assert_eq!(
        load::load_file(&p, &Format::for_path(&p, "text")).unwrap(),
        vec![d.clone()]
    );
    let pattern = format!("{}/*.pdf", dir.path().display());
    assert_eq!(load::load_glob(&pattern, "text").unwrap(), vec![d]);
}

#[test]
fn pdf_extension_selects_pdf() {
    assert_eq!(Format::for_path(Path::new("a/b.PDF"), "t"), Format::Pdf);
    assert_eq!(Format::for_path(Path::new("a/b.pdf"), "t"), Format::Pdf);
}

#[test]
fn image_only_pdf_has_no_extractable_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "scan.pdf", &save(pdf_doc(&[None, None], None)));
    let e = load::load_pdf(&p).unwrap_err();
    assert!(matches!(e, TextError::Pdf { .. }));
    let msg = e.to_string();
    assert!(msg.contains("no extractable text"), "{msg}");
    assert!(msg.contains("scan.pdf"), "{msg}");
}

#[test]
fn image_only_page_among_text_pages_keeps_its_page_start() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = save(pdf_doc(&[Some(&["first"]), None, Some(&["third"])], None));
    let p = write(dir.path(), "mixed.pdf", &bytes);
    let d = load::load_pdf(&p).unwrap();
    assert_eq!(d.metadata["pages"], "3");
    let starts: Vec<usize> = d.metadata["page_starts"]
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(starts[1], starts[2]);
    assert!(d.text[starts[2]..].starts_with("third"));
}

fn encrypted(user_password: &str) -> Vec<u8> {
    let mut doc = pdf_doc(&[Some(&["top secret"])], None);
    let id = Object::String(b"0123456789abcdef".to_vec(), StringFormat::Literal);
    doc.trailer.set("ID", Object::Array(vec![id.clone(), id]));
    let state = EncryptionState::try_from(EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password,
        key_length: 128,
        permissions: Permissions::all(),
    })
    .unwrap();
    doc.encrypt(&state).unwrap();
    save(doc)
}

#[test]
fn encrypted_pdf_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "locked.pdf", &encrypted("secret"));
    let e = load::load_pdf(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, TextError::Pdf { .. }), "{msg}");
    assert!(msg.contains("encrypted"), "{msg}");
    assert!(msg.contains("locked.pdf"), "{msg}");
}

#[test]
fn encrypted_with_empty_user_password_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "open.pdf", &encrypted(""));
    let d = load::load_pdf(&p).unwrap();
    assert!(d.text.contains("top secret"), "{:?}", d.text);
}

#[test]
fn corrupt_pdfs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = two_pages();
    for (name, bytes) in [
        ("truncated.pdf", good[..good.len() / 2].to_vec()),
        (
            "garbage.pdf",
            b"%PDF-1.7\nthis is not a pdf at all".to_vec(),
        ),
        ("text.pdf", b"just some text".to_vec()),
        ("empty.pdf", Vec::new()),
    ] {
        let p = write(dir.path(), name, &bytes);
        match load::load_pdf(&p) {
            Err(TextError::Pdf { path, message }) => {
                assert_eq!(path, p);
                assert!(!message.is_empty());
            }
            other => panic!("{name}: expected a PDF error, got {other:?}"),
        }
    }
}

/// A one-page PDF with text, whose page also invokes form XObjects: form
/// `i` shows its text and invokes the forms `calls[i]` (by index), so cycles
/// and deep or wide nesting can be built. The page invokes form 0.
fn with_forms(calls: &[Vec<usize>]) -> Vec<u8> {
    let mut doc = pdf_doc(&[Some(&["page text"])], None);
    let ids: Vec<_> = calls.iter().map(|_| doc.new_object_id()).collect();
    let mut xobjects = Dictionary::new();
    for (i, id) in ids.iter().enumerate() {
        xobjects.set(format!("X{i}"), Object::Reference(*id));
    }
    let xobjects_id = doc.add_object(xobjects);
    for (i, id) in ids.iter().enumerate() {
        let ops: Vec<Operation> = calls[i]
            .iter()
            .map(|j| Operation::new("Do", vec![name(&format!("X{j}"))]))
            .collect();
        let mut res = Dictionary::new();
        res.set("XObject", Object::Reference(xobjects_id));
        let mut d = dict(vec![
            ("Type", name("XObject")),
            ("Subtype", name("Form")),
            (
                "BBox",
                Object::Array(vec![0.into(), 0.into(), 10.into(), 10.into()]),
            ),
        ]);
        // Odd forms inherit their caller's resources, even ones have their own.
        if i % 2 == 0 {
            d.set("Resources", Object::Dictionary(res));
        }
        let content = Content { operations: ops }.encode().unwrap();
        doc.objects
            .insert(*id, Object::Stream(Stream::new(d, content)));
    }
    // The page's resources (on the Pages node) gain the forms too.
    let pages_id = doc
        .catalog()
        .unwrap()
        .get(b"Pages")
        .unwrap()
        .as_reference()
        .unwrap();
    let res_id = doc
        .get_dictionary(pages_id)
        .unwrap()
        .get(b"Resources")
        .unwrap()
        .as_reference()
        .unwrap();
    doc.get_dictionary_mut(res_id)
        .unwrap()
        .set("XObject", Object::Reference(xobjects_id));
    let page_id = *doc.get_pages().get(&1).unwrap();
    let page_content = doc.get_page_content(page_id).unwrap();
    let mut content = Content::decode(&page_content).unwrap();
    content
        .operations
        .push(Operation::new("Do", vec![name("X0")]));
    let content_id = doc
        .get_dictionary(page_id)
        .unwrap()
        .get(b"Contents")
        .unwrap()
        .as_reference()
        .unwrap();
    doc.objects.insert(
        content_id,
        Object::Stream(Stream::new(Dictionary::new(), content.encode().unwrap())),
    );
    save(doc)
}

/// `pdf-extract` recurses into forms without a limit: a form that invokes
/// itself would overflow the stack and abort the process. These are refused.
#[test]
fn recursive_forms_are_refused_not_a_crash() {
    for (what, calls, want) in [
        ("self", vec![vec![0]], "invokes itself"),
        ("mutual", vec![vec![1], vec![2], vec![0]], "invokes itself"),
        (
            "deep",
            (0..40).map(|i| vec![i + 1]).chain([vec![]]).collect(),
            "nested more than 32 deep",
        ),
        (
            "wide",
            (0..30)
                .map(|i| vec![i + 1, i + 1])
                .chain([vec![]])
                .collect(),
            "invocations",
        ),
    ] {
        let e = load::parse_bytes(Path::new("f.pdf"), &with_forms(&calls), &Format::Pdf)
            .expect_err(what);
        assert!(e.to_string().contains(want), "{what}: {e}");
    }
    // Nesting within the limits is fine.
    let calls: Vec<Vec<usize>> = (0..5).map(|i| vec![i + 1]).chain([vec![]]).collect();
    let docs = load::parse_bytes(Path::new("f.pdf"), &with_forms(&calls), &Format::Pdf).unwrap();
    assert!(docs[0].text.contains("page text"));
}

/// A page whose `Parent` chain loops (and which lacks a MediaBox, so
/// `pdf-extract` would follow it forever).
#[test]
fn cyclic_parent_chain_is_refused() {
    let mut doc = pdf_doc(&[Some(&["x"])], None);
    let page_id = *doc.get_pages().get(&1).unwrap();
    let loop_id = doc.add_object(dict(vec![("Parent", Object::Reference(page_id))]));
    doc.get_dictionary_mut(page_id)
        .unwrap()
        .set("Parent", Object::Reference(loop_id));
    let e = load::parse_bytes(Path::new("c.pdf"), &save(doc), &Format::Pdf).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Damaged PDFs never panic: they load or fail with an error.
    #[test]
    fn damaged_pdfs_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = two_pages();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let r = load::parse_bytes(Path::new("x.pdf"), &bytes, &Format::Pdf);
        if let Err(e) = r {
            prop_assert!(matches!(e, TextError::Pdf { .. }), "{}", e);
        }
    }
}
