//! Reading a file and writing it back (same format, byte order, headers) gives the same
//! samples and headers; cubes written with `write_cube` read back exactly.

use mlp_segy::header::TRACE_FIELDS;
use mlp_segy::write::{write_cube, Grid, SegyWriter, TraceHeader, WriteOptions};
use mlp_segy::{Endian, FileKind, OpenOptions, SampleFormat, SegyFile, TextEncoding};
use std::path::PathBuf;

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/segy");
    if p.is_dir() {
        Some(p)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("../shared/data/segy is missing in CI");
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

/// Copies `f` into a new file trace by trace, keeping format, byte order, text and headers.
fn copy(f: &SegyFile, out: &std::path::Path, endian: Endian) {
    let opts = WriteOptions {
        revision: f.revision.0.clamp(1, 2),
        format: f.format,
        endian,
        samples: f.samples,
        sample_interval_us: f.sample_interval_us as u32,
        text: f.text.first().cloned().unwrap_or_default(),
        text_encoding: f.text_encoding.unwrap_or(TextEncoding::Ebcdic),
    };
    let mut w = SegyWriter::create(out, &opts).unwrap();
    let nsz = f.format.native().size();
    let mut native = vec![0u8; f.samples * nsz];
    for i in 0..f.traces {
        let h = TraceHeader::from_raw(f.trace_header(i).unwrap(), f.endian, endian);
        f.read_native_into(i..i + 1, &mut native).unwrap();
        w.write_trace_native(&h, &native).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn shared_files_round_trip_in_both_byte_orders() {
    let Some(dir) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for name in [
        "small.sgy",
        "small-lsb.sgy",
        "f3.sgy",
        "small-ps.sgy",
        "shot-gather.sgy",
        "long.sgy",
        "tiny.sgy",
        "small.su",
    ] {
        let path = dir.join(name);
        let f = SegyFile::open(&path, &OpenOptions::default()).unwrap();
        for endian in [Endian::Big, Endian::Little] {
            let out = tmp.path().join(format!("{name}-{endian:?}.sgy"));
            copy(&f, &out, endian);
            let g = SegyFile::open(
                &out,
                &OpenOptions {
                    kind: Some(FileKind::Segy),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name} {endian:?}: {e}"));
            assert_eq!(g.endian, endian);
            assert_eq!(
                (g.format, g.samples, g.traces),
                (f.format, f.samples, f.traces),
                "{name}"
            );
            assert_eq!(g.read_all(), f.read_all(), "{name} {endian:?} samples");
            for field in TRACE_FIELDS {
                assert_eq!(
                    g.header_column(field),
                    f.header_column(field),
                    "{name} {}",
                    field.name
                );
            }
            assert_eq!(g.geometry.sorting, f.geometry.sorting, "{name}");
            if f.kind == FileKind::Segy {
                assert_eq!(g.text[0], f.text[0], "{name} text");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
}

#[test]
fn cubes_round_trip_in_every_lossless_format() {
    let tmp = tempfile::tempdir().unwrap();
    let (ni, nx, no, ns) = (3, 4, 2, 9);
    let mut grid = Grid::simple(ni, nx, 100, 7);
    grid.offsets = vec![50, 150];
    for fmt in mlp_segy::format::ALL_FORMATS {
        // Small integers are exact in every format, IBM included.
        let data: Vec<f32> = (0..ni * nx * no * ns).map(|v| (v % 100) as f32).collect();
        for endian in [Endian::Big, Endian::Little] {
            for revision in [1, 2] {
                let out = tmp
                    .path()
                    .join(format!("{}-{endian:?}-{revision}.sgy", fmt.code()));
                let opts = WriteOptions {
                    revision,
                    format: fmt,
                    endian,
                    samples: ns,
                    sample_interval_us: 2000,
                    text: "C 1 round trip".into(),
                    text_encoding: TextEncoding::Ascii,
                };
                write_cube(&out, &opts, &grid, &data).unwrap();
                let f = SegyFile::open(&out, &OpenOptions::default()).unwrap();
                assert_eq!(f.format, fmt);
                assert_eq!(f.revision.0, revision);
                assert_eq!(f.sample_interval_us, 2000.0);
                assert_eq!(f.cube_shape().unwrap(), vec![ni, nx, no, ns]);
                assert_eq!(
                    f.read_cube().unwrap(),
                    data,
                    "{fmt:?} {endian:?} rev {revision}"
                );
                let c = f.geometry.cube.as_ref().unwrap();
                assert_eq!(c.ilines, vec![100, 101, 102]);
                assert_eq!(c.offsets, vec![50, 150]);
                assert!(f.text[0].starts_with("C 1 round trip"));
            }
        }
    }
}

#[test]
fn writer_rejects_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.sgy");
    let opts = WriteOptions {
        samples: 4,
        ..Default::default()
    };
    let mut w = SegyWriter::create(&out, &opts).unwrap();
    let h = w.header();
    let err = w.write_trace(&h, &[1.0; 3]).unwrap_err().to_string();
    assert!(err.contains("3 samples"), "{err}");
    let wrong = TraceHeader::new(Endian::Little);
    assert!(w.write_trace(&wrong, &[1.0; 4]).is_err());
    for bad in [
        WriteOptions {
            samples: 0,
            ..Default::default()
        },
        WriteOptions {
            samples: 70_000,
            revision: 1,
            ..Default::default()
        },
        WriteOptions {
            samples: 4,
            revision: 3,
            ..Default::default()
        },
        WriteOptions {
            samples: 4,
            sample_interval_us: 0,
            ..Default::default()
        },
    ] {
        assert!(SegyWriter::create(tmp.path().join("y.sgy"), &bad).is_err());
    }
    // Rev 2 holds more than 65535 samples per trace.
    let big = WriteOptions {
        samples: 70_000,
        revision: 2,
        format: SampleFormat::I8,
        ..Default::default()
    };
    let p = tmp.path().join("big.sgy");
    let mut w = SegyWriter::create(&p, &big).unwrap();
    let h = w.header();
    w.write_trace(&h, &vec![1.0; 70_000]).unwrap();
    w.finish().unwrap();
    let f = SegyFile::open(&p, &OpenOptions::default()).unwrap();
    assert_eq!((f.samples, f.traces), (70_000, 1));
}
