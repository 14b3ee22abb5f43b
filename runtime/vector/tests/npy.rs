//! `.npy` reading and writing.

use std::io::Write;

use mlp_vector::npy::{read_f32_matrix, write_f32_matrix};
use mlp_vector::VectorError;

/// A format 1.0 file with the given header dict and data bytes.
fn npy_file(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn read_bytes(bytes: &[u8]) -> Result<(Vec<f32>, usize, usize), VectorError> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    read_f32_matrix(f.path())
}

#[test]
fn round_trip() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.npy");
    let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
    write_f32_matrix(&p, &data, 3, 4).unwrap();
    assert_eq!(read_f32_matrix(&p).unwrap(), (data, 3, 4));
    let err = write_f32_matrix(&p, &[1.0; 5], 2, 3).unwrap_err();
    assert!(err.to_string().contains("2×3"), "{err}");
    // Empty matrices are fine.
    write_f32_matrix(&p, &[], 0, 7).unwrap();
    assert_eq!(read_f32_matrix(&p).unwrap(), (vec![], 0, 7));
}

#[test]
fn float64_and_big_endian_are_converted() {
    let vals = [1.5f64, -2.25, 3.0, 0.125];
    let le: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let got = read_bytes(&npy_file(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
        &le,
    ))
    .unwrap();
    assert_eq!(got, (vec![1.5, -2.25, 3.0, 0.125], 2, 2));
    let be: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let got = read_bytes(&npy_file(
        "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2), }",
        &be,
    ))
    .unwrap();
    assert_eq!(got, (vec![1.0, 2.0], 1, 2));
}

#[test]
fn clear_errors() {
    let f4 = |shape: &str, data: &[u8]| {
        npy_file(
            &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
            data,
        )
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not numpy".to_vec(), "not a .npy file"),
        (f4("(4,)", &[0; 16]), "2-D"),
        (f4("(2, 2, 1)", &[0; 16]), "2-D"),
        (f4("(2, 2)", &[0; 12]), "data bytes"),
        (f4("(4611686018427387904, 4)", &[0; 16]), "too large"),
        (f4("(1000000, 1000000)", &[0; 16]), "data bytes"),
        (
            npy_file(
                "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }",
                &[0; 4],
            ),
            "not supported",
        ),
        (
            npy_file(
                "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                &[0; 16],
            ),
            "Fortran",
        ),
        (
            npy_file("{'descr': '<f4', 'fortran_order': False, }", &[0; 16]),
            "shape",
        ),
        (npy_file("garbage", &[0; 16]), "header"),
    ];
    for (bytes, want) in cases {
        let err = read_bytes(&bytes).expect_err(want);
        assert!(err.to_string().contains(want), "want {want:?}: {err}");
    }
    // A header length beyond the file.
    let mut b = f4("(1, 1)", &[0; 4]);
    b[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
    let err = read_bytes(&b).unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    let err = read_f32_matrix(std::path::Path::new("/nonexistent/x.npy")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.npy"), "{err}");
}
