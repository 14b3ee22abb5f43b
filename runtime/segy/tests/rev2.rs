//! Rev 2 layout features: additional trace headers (the extension 1 fields), a variable number
//! of extended textual headers ended by `((SEG: EndText))`, the first-trace offset and the
//! declared trace count with trailing data.

use mlp_segy::header::{encode_text, TextEncoding, TEXT_SIZE};
use mlp_segy::write::{write_cube, Grid, WriteOptions};
use mlp_segy::{Endian, OpenOptions, SampleFormat, SegyFile};

const NS: usize = 5;

/// A rev 2 IEEE file of 2 x 3 traces, as bytes.
fn base(endian: Endian) -> (Vec<u8>, Vec<f32>) {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("a.sgy");
    let data: Vec<f32> = (0..6 * NS).map(|v| v as f32 * 0.5 - 3.0).collect();
    let opts = WriteOptions {
        revision: 2,
        format: SampleFormat::F32,
        endian,
        samples: NS,
        sample_interval_us: 1000,
        text: "C 1 rev 2".into(),
        text_encoding: TextEncoding::Ebcdic,
    };
    write_cube(&p, &opts, &Grid::simple(2, 3, 1, 10), &data).unwrap();
    (std::fs::read(&p).unwrap(), data)
}

fn put(bytes: &mut [u8], at: usize, v: &[u8], endian: Endian) {
    let mut v = v.to_vec();
    if endian == Endian::Little {
        v.reverse();
    }
    bytes[at..at + v.len()].copy_from_slice(&v);
}

#[test]
fn additional_trace_headers_are_skipped_and_tabled() {
    for endian in [Endian::Big, Endian::Little] {
        let (bytes, data) = base(endian);
        let tl = 240 + NS * 4;
        let mut out = bytes[..3600].to_vec();
        put(&mut out, 3506, &1i32.to_be_bytes(), endian); // one additional header per trace
        for t in 0..6 {
            let tr = &bytes[3600 + t * tl..3600 + (t + 1) * tl];
            out.extend_from_slice(&tr[..240]);
            let mut ext = [0u8; 240];
            put(&mut ext, 160, &(1000.5 + t as f64).to_be_bytes(), endian); // EXT_CDP_X
            put(&mut ext, 136, &(NS as u32).to_be_bytes(), endian); // EXT_TRACE_SAMPLE_COUNT
            ext[232..240].copy_from_slice(b"SEG00001");
            out.extend_from_slice(&ext);
            out.extend_from_slice(&tr[240..]);
        }
        let f = SegyFile::from_bytes(out, &OpenOptions::default()).unwrap();
        assert_eq!(f.trace_header_len, 480);
        assert_eq!(f.traces, 6);
        assert_eq!(f.read_cube().unwrap(), data, "{endian:?}");
        let table = mlp_segy::table::headers_table(&f).unwrap();
        let col = table
            .column_by_name("EXT_CDP_X")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap();
        assert_eq!(col.value(3), 1003.5);
        let ns = table.column_by_name("EXT_TRACE_SAMPLE_COUNT").unwrap();
        let ns = ns
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .unwrap();
        assert_eq!(ns.value(0), NS as i64);
    }
}

#[test]
fn variable_extended_text_headers_end_at_the_stanza() {
    let (bytes, data) = base(Endian::Big);
    let mut out = bytes[..3600].to_vec();
    put(&mut out, 3504, &(-1i16).to_be_bytes(), Endian::Big);
    out.extend_from_slice(&encode_text("((SEG: Layout ))", TextEncoding::Ebcdic));
    out.extend_from_slice(&encode_text("((SEG: EndText))", TextEncoding::Ebcdic));
    out.extend_from_slice(&bytes[3600..]);
    let f = SegyFile::from_bytes(out, &OpenOptions::default()).unwrap();
    assert_eq!(f.text.len(), 3);
    assert_eq!(f.trace0, 3600 + 2 * TEXT_SIZE);
    assert_eq!(f.read_cube().unwrap(), data);

    // Without the stanza the file is truncated, and says so.
    let mut bad = bytes[..3600].to_vec();
    put(&mut bad, 3504, &(-1i16).to_be_bytes(), Endian::Big);
    bad.extend_from_slice(&[0x40; 3000]);
    let err = SegyFile::from_bytes(bad, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("EndText") && err.contains("3600"), "{err}");
}

#[test]
fn first_trace_offset_and_declared_trace_count() {
    let (bytes, data) = base(Endian::Little);
    // Move the traces 1000 bytes further and say so; append a trailer the count excludes.
    let mut out = bytes[..3600].to_vec();
    out.extend_from_slice(&[0u8; 1000]);
    out.extend_from_slice(&bytes[3600..]);
    out.extend_from_slice(b"trailer stanza bytes");
    put(&mut out, 3520, &4600u64.to_be_bytes(), Endian::Little);
    put(&mut out, 3512, &6u64.to_be_bytes(), Endian::Little);
    let f = SegyFile::from_bytes(out.clone(), &OpenOptions::default()).unwrap();
    assert_eq!((f.trace0, f.traces), (4600, 6));
    assert_eq!(f.read_cube().unwrap(), data);

    // A declared count the file cannot hold is an error naming the numbers.
    put(&mut out, 3512, &7u64.to_be_bytes(), Endian::Little);
    let err = SegyFile::from_bytes(out.clone(), &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("7 traces") && err.contains("truncated"),
        "{err}"
    );
    // A first-trace offset past the end too.
    put(&mut out, 3512, &6u64.to_be_bytes(), Endian::Little);
    put(&mut out, 3520, &(1u64 << 40).to_be_bytes(), Endian::Little);
    let err = SegyFile::from_bytes(out, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("first trace"), "{err}");
}
