//! Damaged and hostile input never panics: valid SEG-Y and Seismic Unix files with flipped
//! bytes, rewritten header fields, truncations and trailing bytes, and fully random bytes,
//! go through `SegyFile::from_bytes` and, whenever it opens them, through every read API.
//! A file that opens must also be self-consistent (its traces lie inside it, the cube and
//! its mask agree with the traces).
//!
//! The fuzz target in `fuzz/` runs the same checks on libFuzzer's inputs (nightly).
//! `PROPTEST_CASES=N` raises the case counts for a longer hunt.

use mlp_segy::header::{self, BINARY_FIELDS, TRACE_FIELDS};
use mlp_segy::report::Inspect;
use mlp_segy::synth::SynthSpec;
use mlp_segy::write::{write_cube, Grid, WriteOptions};
use mlp_segy::{Endian, FileKind, OpenOptions, SampleFormat, SegyError, SegyFile, TextEncoding};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------

/// Opens `bytes` and, when that works, reads everything there is to read, checking the
/// results are consistent. Returns the open error, if any.
fn exercise(bytes: Vec<u8>, opts: &OpenOptions) -> Option<SegyError> {
    let len = bytes.len();
    let f = match SegyFile::from_bytes(bytes, opts) {
        Ok(f) => f,
        Err(e) => {
            // Every error renders (Display walks all fields).
            assert!(!e.to_string().is_empty());
            return Some(e);
        }
    };
    let (nt, ns) = (f.traces, f.samples);
    assert!(ns > 0, "an open file has samples");
    assert!(nt > 0, "an open file has traces");
    assert!(f.trace_len >= f.trace_header_len + ns * f.format.size());
    assert!(
        f.trace0 + nt * f.trace_len <= len,
        "traces {}..{} outside the {len}-byte file",
        f.trace0,
        f.trace0 + nt * f.trace_len
    );
    assert_eq!(f.bytes().len(), len);

    let all = f.read_all();
    assert_eq!(all.len(), nt * ns);
    let first = f.read_trace(0).expect("trace 0 exists");
    assert!(same_bits(&first, &all[..ns]));
    let last = f.read_trace(nt - 1).expect("the last trace exists");
    assert!(same_bits(&last, &all[(nt - 1) * ns..]));
    assert!(f.read_trace(nt).is_err());
    assert!(f.trace_header(nt).is_err());
    assert!(f
        .read_traces_into(0..nt + 1, &mut vec![0.0; (nt + 1) * ns])
        .is_err());
    let mut native = vec![0u8; nt * ns * f.format.native().size()];
    f.read_native_into(0..nt, &mut native).expect("every trace");
    assert!(f.read_native_into(0..nt + 1, &mut native).is_err());

    assert_eq!(f.trace_header(0).unwrap().len(), 240);
    assert_eq!(
        f.trace_headers_all(nt - 1).unwrap().len(),
        f.trace_header_len
    );
    for field in TRACE_FIELDS {
        let col = f.header_column(field);
        assert_eq!(col.len(), nt);
        assert_eq!(f.field(0, field).unwrap(), col[0]);
    }
    let keys = f.keys();
    assert_eq!(keys.len(), nt);
    let _ = f.binary_fields();
    assert_eq!(f.sample_times().len(), ns);

    let report = Inspect::of(&f);
    assert_eq!(report.traces, nt);
    let _ = report.human();
    serde_json::to_string(&report).expect("the report serialises");

    let table = mlp_segy::table::headers_table(&f).expect("the header table builds");
    assert_eq!(table.num_rows(), nt);

    match &f.geometry.cube {
        Some(c) => {
            let shape = f.cube_shape().expect("a cube has a shape");
            let cube = f.read_cube().expect("a cube reads");
            assert_eq!(cube.len(), shape.iter().product::<usize>());
            assert_eq!(c.cells(), c.ilines.len() * c.xlines.len() * c.offsets.len());
            assert_eq!(
                c.cells(),
                nt + c.missing,
                "cells are traces plus missing ones"
            );
            let mask = f.mask().unwrap();
            assert_eq!(mask.len(), c.cells());
            assert_eq!(mask.iter().filter(|&&m| m).count(), nt);
            for (cell, &t) in c.index.iter().enumerate() {
                let row = &cube[cell * ns..(cell + 1) * ns];
                if t == mlp_segy::geometry::MISSING {
                    assert!(row.iter().all(|&x| x == 0.0));
                } else {
                    let want = &all[t as usize * ns..(t as usize + 1) * ns];
                    assert!(same_bits(row, want), "cell {cell} holds trace {t}");
                }
            }
            let il = f.read_inline(c.ilines[0]).unwrap();
            assert_eq!(il.len(), c.xlines.len() * c.offsets.len() * ns);
            let xl = f.read_crossline(c.xlines[0]).unwrap();
            assert_eq!(xl.len(), c.ilines.len() * c.offsets.len() * ns);
            let slice = f.read_depth_slice(0).unwrap();
            assert_eq!(slice.len(), c.cells());
            assert!(f.read_depth_slice(ns).is_err());
            if !c.ilines.contains(&i32::MIN) {
                assert!(f.read_inline(i32::MIN).is_err());
            }
            if !c.xlines.contains(&i32::MIN) {
                assert!(f.read_crossline(i32::MIN).is_err());
            }
        }
        None => {
            assert!(f.cube_shape().is_err());
            assert!(f.read_cube().is_err());
            assert!(f.mask().is_err());
            assert!(f.read_depth_slice(0).is_err());
            let il = keys[0][0];
            assert!(f.read_inline(il).is_err());
        }
    }
    None
}

/// Equality of samples bit for bit (NaN samples are legal).
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn segy() -> OpenOptions {
    OpenOptions {
        kind: Some(FileKind::Segy),
        ..OpenOptions::default()
    }
}

fn su() -> OpenOptions {
    OpenOptions {
        kind: Some(FileKind::Su),
        ..OpenOptions::default()
    }
}

/// Opens bytes that must be refused; returns the error's text.
fn refused(bytes: Vec<u8>, opts: &OpenOptions) -> String {
    match exercise(bytes, opts) {
        Some(e) => e.to_string(),
        None => panic!("the file opened, but it should have been refused"),
    }
}

// ---------------------------------------------------------------------------------------
// Valid files to damage
// ---------------------------------------------------------------------------------------

struct Corpus {
    segy: Vec<Vec<u8>>,
    su: Vec<Vec<u8>>,
}

fn tmp() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

fn synth_bytes(
    name: &str,
    size: [usize; 3],
    format: SampleFormat,
    endian: Endian,
    revision: u8,
    text_encoding: TextEncoding,
) -> Vec<u8> {
    let spec = SynthSpec {
        ilines: size[0],
        xlines: size[1],
        samples: size[2],
        seed: 11,
        faults: 1,
        ..SynthSpec::default()
    };
    let opts = WriteOptions {
        revision,
        format,
        endian,
        text_encoding,
        ..WriteOptions::default()
    };
    let path = tmp().join(name);
    mlp_segy::tools::synth_to_file(&spec, &opts, &path, None).expect("synthesise");
    std::fs::read(&path).unwrap()
}

fn set_bin(b: &mut [u8], name: &str, value: i64, e: Endian) {
    let f = BINARY_FIELDS.iter().find(|f| f.name == name).unwrap();
    header::set(&mut b[3200..3600], f, 3201, value, e);
}

fn shared_data() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/segy");
    d.is_dir().then_some(d)
}

fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| {
        use Endian::{Big, Little};
        use TextEncoding::{Ascii, Ebcdic};
        let mut segy = vec![
            synth_bytes("a.sgy", [3, 4, 8], SampleFormat::Ibm, Big, 1, Ebcdic),
            synth_bytes("b.sgy", [3, 4, 8], SampleFormat::F32, Little, 2, Ebcdic),
            synth_bytes("c.sgy", [2, 3, 6], SampleFormat::I8, Big, 2, Ascii),
            synth_bytes("d.sgy", [2, 2, 5], SampleFormat::I24, Little, 1, Ascii),
            synth_bytes("e.sgy", [1, 3, 4], SampleFormat::F64, Big, 2, Ebcdic),
            synth_bytes("f.sgy", [4, 1, 3], SampleFormat::U16, Little, 2, Ebcdic),
        ];

        // Pre-stack, crossline line numbers decreasing.
        let grid = Grid {
            ilines: vec![10, 11],
            xlines: vec![7, 5, 3],
            offsets: vec![100, 200],
            ..Grid::simple(2, 3, 10, 3)
        };
        let opts = WriteOptions {
            format: SampleFormat::I16,
            samples: 4,
            ..WriteOptions::default()
        };
        let data: Vec<f32> = (0..2 * 3 * 2 * 4).map(|i| i as f32 - 20.0).collect();
        let p = tmp().join("prestack.sgy");
        write_cube(&p, &opts, &grid, &data).unwrap();
        segy.push(std::fs::read(&p).unwrap());

        // Irregular: the first file without its sixth trace.
        let a = &segy[0];
        let tl = 240 + 8 * 4;
        let mut irr = a[..3600 + 5 * tl].to_vec();
        irr.extend_from_slice(&a[3600 + 6 * tl..]);
        segy.push(irr);

        // Rev 2 with one additional trace header per trace.
        let b = &segy[1];
        let tl = 240 + 8 * 4;
        let mut ext = b[..3600].to_vec();
        set_bin(&mut ext, "MaxAdditionalTraceHeaders", 1, Little);
        for tr in b[3600..].chunks(tl) {
            ext.extend_from_slice(&tr[..240]);
            let mut add = [0u8; 240];
            add[136..140].copy_from_slice(&8u32.to_le_bytes());
            ext.extend_from_slice(&add);
            ext.extend_from_slice(&tr[240..]);
        }
        segy.push(ext);

        // Rev 2 with a variable number of extended textual headers (-1) and an explicit
        // first-trace offset.
        let c = &segy[2];
        let mut var = c[..3600].to_vec();
        set_bin(&mut var, "ExtendedHeaders", -1, Big);
        set_bin(&mut var, "FirstTraceOffset", 3600 + 2 * 3200, Big);
        var.extend_from_slice(&[b' '; 3200]);
        let mut end = [b' '; 3200];
        end[..16].copy_from_slice(b"((SEG: EndText))");
        var.extend_from_slice(&end);
        var.extend_from_slice(&c[3600..]);
        segy.push(var);

        if let Some(d) = shared_data() {
            for name in [
                "small.sgy",
                "small-lsb.sgy",
                "small-ps.sgy",
                "multi-text.sgy",
                "tiny.sgy",
                "1x1.sgy",
            ] {
                if let Ok(b) = std::fs::read(d.join(name)) {
                    segy.push(b);
                }
            }
        }
        for b in &segy {
            assert!(
                exercise(b.clone(), &self::segy()).is_none(),
                "every corpus file opens"
            );
        }

        let mut su_files = vec![segy[1][3600..].to_vec()];
        let be = synth_bytes("su.sgy", [2, 3, 5], SampleFormat::F32, Big, 1, Ebcdic);
        su_files.push(be[3600..].to_vec());
        if let Some(d) = shared_data() {
            if let Ok(b) = std::fs::read(d.join("small.su")) {
                su_files.push(b);
            }
        }
        for b in &su_files {
            assert!(exercise(b.clone(), &su()).is_none(), "every SU file opens");
        }
        Corpus { segy, su: su_files }
    })
}

// ---------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------

/// Values that find edges: zero, signs, type limits.
const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    4,
    5,
    13,
    16,
    64,
    65,
    240,
    255,
    256,
    3200,
    3600,
    32767,
    -32768,
    65535,
    65536,
    0x7fff_ffff,
    -0x8000_0000,
    0xffff_ffff,
    i64::MAX,
    i64::MIN,
];

#[derive(Clone, Debug)]
enum Mutation {
    /// Sets a byte: in the binary header, in some trace header, or anywhere.
    Byte { region: u8, pos: u32, value: u8 },
    /// Sets a binary header field, in the file's byte order or the other.
    BinField {
        field: usize,
        value: i64,
        swap: bool,
    },
    /// Sets a field of one trace header.
    TraceField {
        trace: u16,
        field: usize,
        value: i64,
        swap: bool,
    },
    /// Cuts the file at a fraction (per mille) of its length.
    Truncate(u16),
    /// Removes bytes.
    Delete { pos: u32, len: u16 },
    /// Appends bytes.
    Append(Vec<u8>),
}

fn value() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => proptest::sample::select(INTERESTING),
        1 => any::<i64>(),
        1 => -300i64..70_000,
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0u8..4, any::<u32>(), any::<u8>())
            .prop_map(|(region, pos, value)| Mutation::Byte { region, pos, value }),
        4 => (0..BINARY_FIELDS.len(), value(), proptest::bool::weighted(0.2))
            .prop_map(|(field, value, swap)| Mutation::BinField { field, value, swap }),
        3 => (0u16..8, 0..TRACE_FIELDS.len(), value(), proptest::bool::weighted(0.2))
            .prop_map(|(trace, field, value, swap)| Mutation::TraceField {
                trace,
                field,
                value,
                swap,
            }),
        1 => (0u16..=1000).prop_map(Mutation::Truncate),
        1 => (any::<u32>(), 1u16..600).prop_map(|(pos, len)| Mutation::Delete { pos, len }),
        1 => proptest::collection::vec(any::<u8>(), 1..700).prop_map(Mutation::Append),
    ]
}

/// The byte order the file's headers are in, as the reader would detect it.
fn file_endian(b: &[u8], su: bool) -> Endian {
    if b.len() < if su { 240 } else { 3600 } {
        return Endian::Big;
    }
    if su {
        let ns_be = u16::from_be_bytes([b[114], b[115]]) as usize;
        if ns_be > 0 && b.len().is_multiple_of(240 + 4 * ns_be) {
            Endian::Big
        } else {
            Endian::Little
        }
    } else {
        mlp_segy::file::detect_endian(&b[3200..3600])
    }
}

fn apply(b: &mut Vec<u8>, m: &Mutation, su: bool) {
    let len = b.len();
    // Where the first trace starts and how long traces are, when the file opens; else the
    // layout of the corpus files (no extended headers, 8 samples).
    let kind = if su { self::su() } else { segy() };
    let (trace0, trace_len) = SegyFile::from_bytes(b.clone(), &kind)
        .map(|f| (f.trace0, f.trace_len))
        .unwrap_or(if su { (0, 240 + 32) } else { (3600, 240 + 32) });
    match m {
        Mutation::Byte { region, pos, value } => {
            let pos = *pos as usize;
            let at = match (region, su) {
                (0, false) => 3200 + pos % 400,
                (1, _) => trace0 + pos % 240,
                (2, _) => trace0 + (pos / 240 % 8) * trace_len + pos % 240,
                _ => pos % len.max(1),
            };
            if at < len {
                b[at] = *value;
            }
        }
        Mutation::BinField { field, value, swap } => {
            if su || len < 3600 {
                return;
            }
            let mut e = file_endian(b, su);
            if *swap {
                e = other(e);
            }
            header::set(&mut b[3200..3600], &BINARY_FIELDS[*field], 3201, *value, e);
        }
        Mutation::TraceField {
            trace,
            field,
            value,
            swap,
        } => {
            let mut e = file_endian(b, su);
            if *swap {
                e = other(e);
            }
            let start = trace0 + *trace as usize * trace_len;
            if start + 240 <= len {
                header::set(
                    &mut b[start..start + 240],
                    &TRACE_FIELDS[*field],
                    1,
                    *value,
                    e,
                );
            }
        }
        Mutation::Truncate(per_mille) => b.truncate(len * *per_mille as usize / 1000),
        Mutation::Delete { pos, len: n } => {
            if len > 0 {
                let at = *pos as usize % len;
                let end = (at + *n as usize).min(len);
                b.drain(at..end);
            }
        }
        Mutation::Append(extra) => b.extend_from_slice(extra),
    }
}

fn other(e: Endian) -> Endian {
    match e {
        Endian::Big => Endian::Little,
        Endian::Little => Endian::Big,
    }
}

/// Open options: mostly the defaults, sometimes other key bytes (valid or not), forced
/// byte orders or no geometry.
fn options(kind: FileKind) -> impl Strategy<Value = OpenOptions> {
    let byte = prop_oneof![
        6 => Just(None),
        3 => (1u16..=240).prop_map(Some),
        1 => proptest::sample::select(vec![0u16, 237, 238, 239, 240, 241, u16::MAX]).prop_map(Some),
    ];
    let endian = prop_oneof![
        8 => Just(None),
        1 => Just(Some(Endian::Big)),
        1 => Just(Some(Endian::Little)),
    ];
    (
        byte.clone(),
        byte.clone(),
        byte,
        endian,
        proptest::bool::weighted(0.1),
    )
        .prop_map(move |(il, xl, off, endian, unstructured)| {
            let d = OpenOptions::default();
            OpenOptions {
                iline: il.unwrap_or(d.iline),
                xline: xl.unwrap_or(d.xline),
                offset: off.unwrap_or(d.offset),
                unstructured,
                endian,
                kind: Some(kind),
            }
        })
}

fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(3000))]

    /// Damaged SEG-Y files: errors or consistent reads, never a panic.
    #[test]
    fn damaged_segy_never_panics(
        base in any::<proptest::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..6),
        opts in options(FileKind::Segy),
    ) {
        let c = corpus();
        let mut b = base.get(&c.segy).clone();
        for m in &muts {
            apply(&mut b, m, false);
        }
        exercise(b, &opts);
    }
}

proptest! {
    #![proptest_config(cases(1000))]

    /// Damaged Seismic Unix files.
    #[test]
    fn damaged_su_never_panics(
        base in any::<proptest::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..5),
        opts in options(FileKind::Su),
    ) {
        let c = corpus();
        let mut b = base.get(&c.su).clone();
        for m in &muts {
            apply(&mut b, m, true);
        }
        exercise(b, &opts);
    }

    /// Random bytes of random lengths, as SEG-Y and as SU.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        exercise(bytes.clone(), &segy());
        exercise(bytes, &su());
    }

    /// Random bytes behind a plausible binary header (a known format, a small sample
    /// count), so that parsing gets past the format check.
    #[test]
    fn random_traces_behind_a_plausible_header(
        mut bytes in proptest::collection::vec(any::<u8>(), 3600..12_000),
        format in proptest::sample::select(mlp_segy::format::ALL_FORMATS.to_vec()),
        samples in 0i64..40,
        revision in 0i64..3,
        little in any::<bool>(),
        unstructured in any::<bool>(),
    ) {
        let e = if little { Endian::Little } else { Endian::Big };
        set_bin(&mut bytes, "Format", format.code() as i64, e);
        set_bin(&mut bytes, "Samples", samples, e);
        set_bin(&mut bytes, "SEGYRevision", revision, e);
        set_bin(&mut bytes, "ExtendedHeaders", 0, e);
        let opts = OpenOptions { unstructured, ..segy() };
        exercise(bytes, &opts);
    }
}

// ---------------------------------------------------------------------------------------
// Targeted cases
// ---------------------------------------------------------------------------------------

/// A valid big-endian rev 1 IBM file: 3 x 4 traces of 8 samples (272 bytes each).
fn rev1() -> Vec<u8> {
    corpus().segy[0].clone()
}

/// A valid little-endian rev 2 IEEE file: 3 x 4 traces of 8 samples.
fn rev2() -> Vec<u8> {
    corpus().segy[1].clone()
}

fn with_bin(mut b: Vec<u8>, name: &str, value: i64) -> Vec<u8> {
    let e = mlp_segy::file::detect_endian(&b[3200..3600]);
    set_bin(&mut b, name, value, e);
    b
}

#[test]
fn corpus_files_open() {
    let c = corpus();
    assert!(c.segy.len() >= 10);
    let f = SegyFile::from_bytes(rev2(), &segy()).unwrap();
    assert_eq!((f.revision.0, f.traces, f.samples), (2, 12, 8));
    // The file with additional trace headers reads the same samples.
    let ext = SegyFile::from_bytes(c.segy[8].clone(), &segy()).unwrap();
    assert_eq!(ext.trace_header_len, 480);
    assert_eq!(ext.read_all(), f.read_all());
    let var = SegyFile::from_bytes(c.segy[9].clone(), &segy()).unwrap();
    assert_eq!(var.text.len(), 3);
    let irr = SegyFile::from_bytes(c.segy[7].clone(), &segy()).unwrap();
    assert_eq!(irr.geometry.cube.as_ref().unwrap().missing, 1);
}

#[test]
fn short_and_empty_files() {
    let b = rev1();
    assert!(refused(Vec::new(), &segy()).contains("empty"));
    assert!(refused(Vec::new(), &su()).contains("empty"));
    for n in [1, 100, 3199] {
        assert!(refused(b[..n].to_vec(), &segy()).contains(&format!("{n} bytes")));
    }
    for n in [3200, 3599] {
        let e = refused(b[..n].to_vec(), &segy());
        assert!(e.contains("truncated") && e.contains("3200..3600"), "{e}");
    }
    let e = refused(b[..3600].to_vec(), &segy());
    assert!(e.contains("no traces") && e.contains("3600"), "{e}");
    // Part of the first trace header only.
    let e = refused(b[..3700].to_vec(), &segy());
    assert!(e.contains("byte offset 3600"), "{e}");
    for n in [0usize, 1, 239] {
        let e = refused(vec![0; n], &su());
        assert!(!e.is_empty());
    }
}

#[test]
fn huge_sample_counts() {
    // 65535 samples declared in a small file.
    let e = refused(with_bin(rev1(), "Samples", 65535), &segy());
    assert!(e.contains("65535") && e.contains("byte offset 3600"), "{e}");
    // Rev 2 extended sample count.
    for ns in [i32::MAX as i64, 1 << 24, 9] {
        let e = refused(with_bin(rev2(), "ExtSamples", ns), &segy());
        assert!(e.contains("byte offset"), "{e}");
    }
    // Negative extended count: ignored, the 2-byte count is used.
    assert!(exercise(with_bin(rev2(), "ExtSamples", -5), &segy()).is_none());
    // No count in the binary header: the first trace header's (bytes 115-116) is used.
    let b = with_bin(rev1(), "Samples", 0);
    assert!(exercise(b.clone(), &segy()).is_none());
    let mut z = b.clone();
    z[3600 + 114..3600 + 116].copy_from_slice(&[0xff, 0xff]);
    let e = refused(z, &segy());
    assert!(e.contains("65535"), "{e}");
    let mut z = b;
    z[3600 + 114..3600 + 116].copy_from_slice(&[0, 0]);
    let e = refused(z, &segy());
    assert!(e.contains("zero samples") && e.contains("3220"), "{e}");
}

#[test]
fn formats_and_byte_order() {
    let e = refused(with_bin(rev1(), "Format", 4), &segy());
    assert!(e.contains("format 4") && e.contains("3224"), "{e}");
    for code in [0, 13, 14, 17, 99, -1, 0x7fff] {
        let e = refused(with_bin(rev1(), "Format", code), &segy());
        assert!(
            e.contains("unknown sample format") && e.contains("3224"),
            "{e}"
        );
    }
    // A code that is only valid in the other byte order: detected as that order when the
    // order is not forced (then the sample count does not fit), and a hint when it is.
    let mut b = rev1();
    b[3224..3226].copy_from_slice(&[5, 0]);
    let e = refused(b.clone(), &segy());
    assert!(e.contains("byte offset"), "{e}");
    let forced = OpenOptions {
        endian: Some(Endian::Big),
        ..segy()
    };
    let e = refused(b, &forced);
    assert!(
        e.contains("code 1280") && e.contains("little-endian"),
        "{e}"
    );
    // Forcing the wrong byte order: a clear error, or a consistent (if odd) reading.
    for bytes in [rev1(), rev2()] {
        for e in [Endian::Big, Endian::Little] {
            let opts = OpenOptions {
                endian: Some(e),
                ..segy()
            };
            exercise(bytes.clone(), &opts);
        }
    }
    // Every format code in both byte orders over the same bytes.
    for code in 1..=16i64 {
        for e in [Endian::Big, Endian::Little] {
            let mut b = rev1();
            set_bin(&mut b, "Format", code, e);
            exercise(b, &segy());
        }
    }
}

#[test]
fn extended_textual_headers() {
    // More extended headers declared than the file holds.
    for ext in [2, 100, 32767] {
        let e = refused(with_bin(rev1(), "ExtendedHeaders", ext), &segy());
        assert!(
            e.contains("extended textual headers") && e.contains("3504"),
            "{ext}: {e}"
        );
    }
    for ext in [-2, -32768] {
        let e = refused(with_bin(rev1(), "ExtendedHeaders", ext), &segy());
        assert!(e.contains("3504"), "{ext}: {e}");
    }
    // Room for one: it is read, and the rest is not a whole trace.
    let e = refused(with_bin(rev1(), "ExtendedHeaders", 1), &segy());
    assert!(e.contains("byte offset 6800"), "{e}");
    // A variable number (-1) with no ((SEG: EndText)) stanza before the end of the file.
    let e = refused(with_bin(rev2(), "ExtendedHeaders", -1), &segy());
    assert!(e.contains("EndText") && e.contains("truncated"), "{e}");
    // One extended header that swallows the traces.
    let mut b = rev1();
    b.truncate(3600 + 3200);
    let e = refused(with_bin(b, "ExtendedHeaders", 1), &segy());
    assert!(e.contains("no traces") && e.contains("6800"), "{e}");
}

#[test]
fn rev2_trace_count_and_first_trace_offset() {
    for n in [13u64, 1000, 1 << 40, u64::MAX] {
        let e = refused(with_bin(rev2(), "NrTracesInFile", n as i64), &segy());
        assert!(e.contains("byte offset 3512"), "{n}: {e}");
    }
    // Fewer traces declared than the file holds: the declared ones are read.
    let f = SegyFile::from_bytes(with_bin(rev2(), "NrTracesInFile", 5), &segy()).unwrap();
    assert_eq!(f.traces, 5);
    exercise(with_bin(rev2(), "NrTracesInFile", 5), &segy());
    let len = rev2().len() as i64;
    for first in [len + 1, 1 << 40, -1, i64::MIN, 100, 3599] {
        let e = refused(with_bin(rev2(), "FirstTraceOffset", first), &segy());
        assert!(e.contains("3520"), "{first}: {e}");
    }
    // The first trace exactly at the end of the file: no traces.
    let e = refused(with_bin(rev2(), "FirstTraceOffset", len), &segy());
    assert!(e.contains("no traces"), "{e}");
    // Inside the file but not on a trace boundary.
    for first in [3601, 3600 + 272 - 1, len - 10] {
        exercise(with_bin(rev2(), "FirstTraceOffset", first), &segy());
    }
    // Rev 1 files ignore both fields.
    let b = with_bin(
        with_bin(rev1(), "NrTracesInFile", 99),
        "FirstTraceOffset",
        1 << 40,
    );
    assert!(exercise(b, &segy()).is_none());
}

#[test]
fn additional_trace_headers() {
    for extra in [65, 1000, i32::MAX as i64] {
        let e = refused(
            with_bin(rev2(), "MaxAdditionalTraceHeaders", extra),
            &segy(),
        );
        assert!(
            e.contains("3506") && e.contains("not plausible"),
            "{extra}: {e}"
        );
    }
    for extra in [1, 2, 64] {
        let e = refused(
            with_bin(rev2(), "MaxAdditionalTraceHeaders", extra),
            &segy(),
        );
        assert!(e.contains("byte offset"), "{extra}: {e}");
    }
    // Negative: ignored.
    assert!(exercise(with_bin(rev2(), "MaxAdditionalTraceHeaders", -7), &segy()).is_none());
}

#[test]
fn key_bytes() {
    for byte in [0u16, 238, 239, 240, 241, 1000, u16::MAX] {
        for which in 0..3 {
            let mut o = segy();
            match which {
                0 => o.iline = byte,
                1 => o.xline = byte,
                _ => o.offset = byte,
            }
            let e = refused(rev1(), &o);
            assert!(e.contains(&format!("byte position {byte}")), "{e}");
            let e = refused(
                rev1()[3600..].to_vec(),
                &OpenOptions {
                    kind: Some(FileKind::Su),
                    ..o
                },
            );
            assert!(e.contains(&format!("byte position {byte}")), "{e}");
        }
    }
    // Every key byte that fits opens and reads consistently, in both file kinds.
    for byte in 1u16..=237 {
        let o = OpenOptions {
            iline: byte,
            xline: 238 - byte,
            offset: byte.min(200),
            ..segy()
        };
        assert!(exercise(rev1(), &o).is_none(), "key byte {byte}");
        let s = OpenOptions {
            kind: Some(FileKind::Su),
            ..o
        };
        assert!(
            exercise(rev2()[3600..].to_vec(), &s).is_none(),
            "SU key byte {byte}"
        );
    }
}

#[test]
fn trace_count_inconsistent_with_size() {
    let b = rev1();
    for extra in [1usize, 5, 271, 273] {
        let mut g = b.clone();
        g.extend(std::iter::repeat_n(0xabu8, extra));
        let e = refused(g, &segy());
        assert!(
            e.contains("not a whole number") && e.contains("byte offset"),
            "{e}"
        );
    }
    for cut in [1usize, 100, 271] {
        let e = refused(b[..b.len() - cut].to_vec(), &segy());
        assert!(e.contains("truncated") && e.contains("byte offset"), "{e}");
    }
    // A whole extra trace of zeros is a trace.
    let mut g = b.clone();
    g.extend(std::iter::repeat_n(0u8, 272));
    assert!(exercise(g, &segy()).is_none());
}

#[test]
fn su_edge_cases() {
    let su_file = rev2()[3600..].to_vec(); // little-endian, 8 samples
    assert!(exercise(su_file.clone(), &su()).is_none());
    // Zero samples.
    let mut z = su_file.clone();
    z[114..116].copy_from_slice(&[0, 0]);
    let e = refused(z.clone(), &su());
    assert!(e.contains("114"), "{e}");
    for e in [Endian::Big, Endian::Little] {
        let o = OpenOptions {
            endian: Some(e),
            ..su()
        };
        let err = refused(z.clone(), &o);
        assert!(err.contains("114") || err.contains("byte offset"), "{err}");
    }
    // Trailing bytes and truncation.
    let mut t = su_file.clone();
    t.push(0);
    refused(t, &su());
    refused(su_file[..su_file.len() - 3].to_vec(), &su());
    // Huge sample count.
    let mut h = su_file.clone();
    h[114..116].copy_from_slice(&[0xff, 0xff]);
    refused(h, &su());
    // One 240-byte header: no room for a sample.
    refused(su_file[..240].to_vec(), &su());
    // A SEG-Y file read as SU and an SU file read as SEG-Y.
    exercise(rev1(), &su());
    exercise(su_file, &segy());
}

#[test]
fn geometry_edge_cases() {
    // All traces with the same keys: unstructured, reads as traces.
    let mut b = rev1();
    let tl = 272;
    for t in 0..12 {
        let h = 3600 + t * tl;
        b[h + 188..h + 196].fill(0);
    }
    let f = SegyFile::from_bytes(b.clone(), &segy()).unwrap();
    assert!(f.geometry.cube.is_none());
    exercise(b.clone(), &segy());
    // Extreme line numbers.
    for (t, (il, xl)) in [(i32::MIN, i32::MAX), (i32::MAX, i32::MIN), (0, -1)]
        .into_iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        let h = 3600 + t * tl;
        b[h + 188..h + 192].copy_from_slice(&(il.wrapping_add(t as i32)).to_be_bytes());
        b[h + 192..h + 196].copy_from_slice(&xl.to_be_bytes());
    }
    exercise(b, &segy());
}

/// The mutations are not all refused at once: a good share of damaged files still open,
/// so the read APIs above really see damaged headers.
#[test]
fn mutations_reach_the_read_apis() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let c = corpus();
    for (files, su) in [(&c.segy, false), (&c.su, true)] {
        let mut runner = TestRunner::deterministic();
        let strategy = (
            any::<proptest::sample::Index>(),
            proptest::collection::vec(mutation(), 1..4),
        );
        let (n, mut opened) = (400, 0);
        for _ in 0..n {
            let (base, muts) = strategy.new_tree(&mut runner).unwrap().current();
            let mut b = base.get(files).clone();
            for m in &muts {
                apply(&mut b, m, su);
            }
            let opts = if su { self::su() } else { segy() };
            opened += exercise(b, &opts).is_none() as usize;
        }
        eprintln!(
            "{} mutated files: {opened} of {n} open",
            if su { "SU" } else { "SEG-Y" }
        );
        assert!(opened >= n / 5, "only {opened} of {n} mutated files open");
    }
}

/// `SegyFile::open` (memory-mapped, what the CLI uses) agrees with `from_bytes` on damaged
/// files, picks SU for `.su` files, and refuses directories and empty files cleanly.
#[test]
fn open_from_disk_agrees_with_from_bytes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let mut runner = TestRunner::deterministic();
    let strategy = (
        any::<proptest::sample::Index>(),
        proptest::collection::vec(mutation(), 0..4),
    );
    for i in 0..60 {
        let (base, muts) = strategy.new_tree(&mut runner).unwrap().current();
        let su = i % 3 == 2;
        let mut b = base.get(if su { &c.su } else { &c.segy }).clone();
        for m in &muts {
            apply(&mut b, m, su);
        }
        let path = dir.path().join(if su { "f.su" } else { "f.sgy" });
        std::fs::write(&path, &b).unwrap();
        // No kind given: the extension decides.
        let from_disk = SegyFile::open(&path, &OpenOptions::default());
        let in_memory = SegyFile::from_bytes(b, &if su { self::su() } else { segy() });
        match (from_disk, in_memory) {
            (Ok(d), Ok(m)) => {
                assert_eq!((d.kind, d.traces, d.samples), (m.kind, m.traces, m.samples));
                assert!(same_bits(&d.read_all(), &m.read_all()));
                assert_eq!(d.path(), Some(path.as_path()));
            }
            (Err(d), Err(m)) => assert_eq!(d.to_string(), m.to_string()),
            (d, m) => panic!(
                "open and from_bytes disagree: {:?} vs {:?}",
                d.err().map(|e| e.to_string()),
                m.err().map(|e| e.to_string())
            ),
        }
    }
    let empty = dir.path().join("empty.sgy");
    std::fs::write(&empty, b"").unwrap();
    let e = SegyFile::open(&empty, &OpenOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("empty"), "{e}");
    let e = SegyFile::open(dir.path(), &OpenOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("directory"), "{e}");
    let e = SegyFile::open(dir.path().join("nope.sgy"), &OpenOptions::default())
        .err()
        .unwrap();
    assert!(matches!(e, SegyError::Io { .. }), "{e}");
}
