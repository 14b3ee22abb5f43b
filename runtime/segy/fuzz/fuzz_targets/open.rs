//! Arbitrary bytes through everything `mlp segy inspect` and `mlp segy export` read: the
//! input is opened as SEG-Y and as Seismic Unix with the default options, and once more
//! with options picked by its last byte (forced byte order, other key bytes, no geometry).
//! Whenever a file opens, every read API runs over it: traces (f32 and native), headers
//! (fields, columns, keys, the Arrow table), the inspect report, and the cube, its mask,
//! lines and depth slices.
//!
//! A crash is any panic, or an open file that is not self-consistent (traces outside the
//! file, a cube whose cells do not match its traces). The invariants are those of
//! `runtime/segy/tests/robustness.rs`, which runs mutated and random files on stable.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlp_segy::geometry::MISSING;
use mlp_segy::header::TRACE_FIELDS;
use mlp_segy::report::Inspect;
use mlp_segy::{Endian, FileKind, OpenOptions, SegyFile};

/// Key byte triples (inline, crossline, offset) the last input byte chooses from: the
/// defaults, common alternatives, the header's edges and invalid positions.
const KEYS: [(u16, u16, u16); 8] = [
    (189, 193, 37),
    (9, 13, 37),
    (193, 189, 37),
    (5, 21, 37),
    (237, 1, 233),
    (1, 1, 1),
    (238, 193, 37),
    (189, 0, 241),
];

fuzz_target!(|data: &[u8]| {
    for kind in [FileKind::Segy, FileKind::Su] {
        let opts = OpenOptions {
            kind: Some(kind),
            ..OpenOptions::default()
        };
        exercise(data, &opts);
    }
    if let Some(&last) = data.last() {
        let (iline, xline, offset) = KEYS[(last & 7) as usize];
        let opts = OpenOptions {
            iline,
            xline,
            offset,
            unstructured: last & 8 != 0,
            endian: match (last >> 4) & 3 {
                1 => Some(Endian::Big),
                2 => Some(Endian::Little),
                _ => None,
            },
            kind: Some(if last & 0x40 != 0 {
                FileKind::Su
            } else {
                FileKind::Segy
            }),
        };
        exercise(data, &opts);
    }
});

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn exercise(data: &[u8], opts: &OpenOptions) {
    let len = data.len();
    let f = match SegyFile::from_bytes(data.to_vec(), opts) {
        Ok(f) => f,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let (nt, ns) = (f.traces, f.samples);
    assert!(ns > 0 && nt > 0, "an open file has traces and samples");
    assert!(
        f.trace0 + nt * f.trace_len <= len,
        "traces outside the file"
    );
    assert!(f.trace_len >= f.trace_header_len + ns * f.format.size());

    let all = f.read_all();
    assert_eq!(all.len(), nt * ns);
    assert!(same_bits(
        &f.read_trace(nt - 1).unwrap(),
        &all[(nt - 1) * ns..]
    ));
    assert!(f.read_trace(nt).is_err());
    let mut native = vec![0u8; nt * ns * f.format.native().size()];
    f.read_native_into(0..nt, &mut native).unwrap();
    assert!(f.read_native_into(0..nt + 1, &mut native).is_err());

    for field in TRACE_FIELDS {
        let col = f.header_column(field);
        assert_eq!(col.len(), nt);
        assert_eq!(f.field(nt - 1, field).unwrap(), col[nt - 1]);
    }
    assert_eq!(f.trace_headers_all(0).unwrap().len(), f.trace_header_len);
    let keys = f.keys();
    assert_eq!(keys.len(), nt);
    let _ = f.binary_fields();
    assert_eq!(f.sample_times().len(), ns);

    let report = Inspect::of(&f);
    let _ = report.human();
    serde_json::to_string(&report).unwrap();
    let table = mlp_segy::table::headers_table(&f).unwrap();
    assert_eq!(table.num_rows(), nt);

    match &f.geometry.cube {
        Some(c) => {
            let shape = f.cube_shape().unwrap();
            let cube = f.read_cube().unwrap();
            assert_eq!(cube.len(), shape.iter().product::<usize>());
            assert_eq!(c.cells(), nt + c.missing);
            let mask = f.mask().unwrap();
            assert_eq!(mask.iter().filter(|&&m| m).count(), nt);
            for (cell, &t) in c.index.iter().enumerate() {
                let row = &cube[cell * ns..(cell + 1) * ns];
                if t == MISSING {
                    assert!(row.iter().all(|&x| x == 0.0));
                } else {
                    let t = t as usize;
                    assert!(same_bits(row, &all[t * ns..(t + 1) * ns]));
                }
            }
            let il = f.read_inline(c.ilines[0]).unwrap();
            assert_eq!(il.len(), c.xlines.len() * c.offsets.len() * ns);
            let xl = f.read_crossline(c.xlines[c.xlines.len() - 1]).unwrap();
            assert_eq!(xl.len(), c.ilines.len() * c.offsets.len() * ns);
            assert_eq!(f.read_depth_slice(ns - 1).unwrap().len(), c.cells());
            assert!(f.read_depth_slice(ns).is_err());
        }
        None => {
            assert!(f.read_cube().is_err());
            assert!(f.mask().is_err());
            assert!(f.read_inline(keys[0][0]).is_err());
        }
    }
}
