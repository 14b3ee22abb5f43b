//! Sample formats (binary header bytes 3225-3226) and their decoding and encoding.
//!
//! Every format of SEG-Y rev 2 is supported except the obsolete code 4 (fixed point with
//! gain), which is refused with [`crate::SegyError::UnsupportedFormat`]. IBM floats are
//! converted with the classic truncating algorithm segyio uses, so results are bit-exact
//! with it; the loops are written branch-free so the compiler vectorises them.

use serde::Serialize;

/// Byte order of headers and samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    Big,
    Little,
}

impl Endian {
    /// "big" or "little".
    pub fn name(self) -> &'static str {
        match self {
            Endian::Big => "big",
            Endian::Little => "little",
        }
    }
}

impl std::str::FromStr for Endian {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "big" | "msb" | "be" => Ok(Endian::Big),
            "little" | "lsb" | "le" => Ok(Endian::Little),
            _ => Err(format!("unknown byte order `{s}` (expected big or little)")),
        }
    }
}

/// A sample format code of SEG-Y rev 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// 1: 4-byte IBM hexadecimal floating point.
    Ibm,
    /// 2: 4-byte two's complement integer.
    I32,
    /// 3: 2-byte two's complement integer.
    I16,
    /// 5: 4-byte IEEE floating point.
    F32,
    /// 6: 8-byte IEEE floating point.
    F64,
    /// 7: 3-byte two's complement integer.
    I24,
    /// 8: 1-byte two's complement integer.
    I8,
    /// 9: 8-byte two's complement integer.
    I64,
    /// 10: 4-byte unsigned integer.
    U32,
    /// 11: 2-byte unsigned integer.
    U16,
    /// 12: 8-byte unsigned integer.
    U64,
    /// 15: 3-byte unsigned integer.
    U24,
    /// 16: 1-byte unsigned integer.
    U8,
}

/// All supported formats, in code order.
pub const ALL_FORMATS: [SampleFormat; 13] = [
    SampleFormat::Ibm,
    SampleFormat::I32,
    SampleFormat::I16,
    SampleFormat::F32,
    SampleFormat::F64,
    SampleFormat::I24,
    SampleFormat::I8,
    SampleFormat::I64,
    SampleFormat::U32,
    SampleFormat::U16,
    SampleFormat::U64,
    SampleFormat::U24,
    SampleFormat::U8,
];

/// The element type a format decodes to without loss (`--dtype native`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeType {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl NativeType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NativeType::I8 | NativeType::U8 => 1,
            NativeType::I16 | NativeType::U16 => 2,
            NativeType::F32 | NativeType::I32 | NativeType::U32 => 4,
            NativeType::F64 | NativeType::I64 | NativeType::U64 => 8,
        }
    }
}

impl SampleFormat {
    /// Looks a format code up; `None` for unknown codes and for the obsolete code 4.
    pub fn from_code(code: i32) -> Option<SampleFormat> {
        Some(match code {
            1 => SampleFormat::Ibm,
            2 => SampleFormat::I32,
            3 => SampleFormat::I16,
            5 => SampleFormat::F32,
            6 => SampleFormat::F64,
            7 => SampleFormat::I24,
            8 => SampleFormat::I8,
            9 => SampleFormat::I64,
            10 => SampleFormat::U32,
            11 => SampleFormat::U16,
            12 => SampleFormat::U64,
            15 => SampleFormat::U24,
            16 => SampleFormat::U8,
            _ => return None,
        })
    }

    /// Whether `code` is a format code of the standard, including the obsolete 4.
    pub fn is_known_code(code: i32) -> bool {
        code == 4 || Self::from_code(code).is_some()
    }

    /// The binary-header code.
    pub fn code(self) -> i16 {
        match self {
            SampleFormat::Ibm => 1,
            SampleFormat::I32 => 2,
            SampleFormat::I16 => 3,
            SampleFormat::F32 => 5,
            SampleFormat::F64 => 6,
            SampleFormat::I24 => 7,
            SampleFormat::I8 => 8,
            SampleFormat::I64 => 9,
            SampleFormat::U32 => 10,
            SampleFormat::U16 => 11,
            SampleFormat::U64 => 12,
            SampleFormat::U24 => 15,
            SampleFormat::U8 => 16,
        }
    }

    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            SampleFormat::I8 | SampleFormat::U8 => 1,
            SampleFormat::I16 | SampleFormat::U16 => 2,
            SampleFormat::I24 | SampleFormat::U24 => 3,
            SampleFormat::Ibm | SampleFormat::I32 | SampleFormat::U32 | SampleFormat::F32 => 4,
            SampleFormat::F64 | SampleFormat::I64 | SampleFormat::U64 => 8,
        }
    }

    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            SampleFormat::Ibm => "4-byte IBM float",
            SampleFormat::I32 => "4-byte signed integer",
            SampleFormat::I16 => "2-byte signed integer",
            SampleFormat::F32 => "4-byte IEEE float",
            SampleFormat::F64 => "8-byte IEEE float",
            SampleFormat::I24 => "3-byte signed integer",
            SampleFormat::I8 => "1-byte signed integer",
            SampleFormat::I64 => "8-byte signed integer",
            SampleFormat::U32 => "4-byte unsigned integer",
            SampleFormat::U16 => "2-byte unsigned integer",
            SampleFormat::U64 => "8-byte unsigned integer",
            SampleFormat::U24 => "3-byte unsigned integer",
            SampleFormat::U8 => "1-byte unsigned integer",
        }
    }

    /// The lossless element type of decoded samples (IBM floats become `F32`).
    pub fn native(self) -> NativeType {
        match self {
            SampleFormat::Ibm | SampleFormat::F32 => NativeType::F32,
            SampleFormat::F64 => NativeType::F64,
            SampleFormat::I8 => NativeType::I8,
            SampleFormat::I16 => NativeType::I16,
            SampleFormat::I24 | SampleFormat::I32 => NativeType::I32,
            SampleFormat::I64 => NativeType::I64,
            SampleFormat::U8 => NativeType::U8,
            SampleFormat::U16 => NativeType::U16,
            SampleFormat::U24 | SampleFormat::U32 => NativeType::U32,
            SampleFormat::U64 => NativeType::U64,
        }
    }

    /// Whether encoding a value of the native type and decoding it again is exact.
    pub fn is_lossless(self) -> bool {
        self != SampleFormat::Ibm
    }

    /// Decodes `out.len()` samples from `src` (which holds at least `out.len() * size()`
    /// bytes) into `f32`. Integers are converted with `as` (rounding to nearest).
    ///
    /// On x86-64 CPUs with AVX2 (detected at run time) a copy of the loops compiled for AVX2
    /// runs: byte swaps and the IBM conversion then work on eight samples at a time.
    #[inline]
    pub fn decode_f32(self, endian: Endian, src: &[u8], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { self.decode_f32_avx2(endian, src, out) };
                return;
            }
        }
        self.decode_f32_generic(endian, src, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn decode_f32_avx2(self, endian: Endian, src: &[u8], out: &mut [f32]) {
        self.decode_f32_generic(endian, src, out)
    }

    #[inline(always)]
    fn decode_f32_generic(self, endian: Endian, src: &[u8], out: &mut [f32]) {
        let n = out.len();
        let src = &src[..n * self.size()];
        match self {
            SampleFormat::Ibm => {
                let words = src.chunks_exact(4);
                match endian {
                    Endian::Big => {
                        for (o, w) in out.iter_mut().zip(words) {
                            *o = f32::from_bits(ibm_to_ieee(u32::from_be_bytes(arr4(w))));
                        }
                    }
                    Endian::Little => {
                        for (o, w) in out.iter_mut().zip(words) {
                            *o = f32::from_bits(ibm_to_ieee(u32::from_le_bytes(arr4(w))));
                        }
                    }
                }
            }
            SampleFormat::F32 => decode_loop(
                src,
                out,
                endian,
                |b| f32::from_be_bytes(arr4(b)),
                |b| f32::from_le_bytes(arr4(b)),
            ),
            SampleFormat::F64 => decode_loop(
                src,
                out,
                endian,
                |b| f64::from_be_bytes(arr8(b)) as f32,
                |b| f64::from_le_bytes(arr8(b)) as f32,
            ),
            SampleFormat::I32 => decode_loop(
                src,
                out,
                endian,
                |b| i32::from_be_bytes(arr4(b)) as f32,
                |b| i32::from_le_bytes(arr4(b)) as f32,
            ),
            SampleFormat::U32 => decode_loop(
                src,
                out,
                endian,
                |b| u32::from_be_bytes(arr4(b)) as f32,
                |b| u32::from_le_bytes(arr4(b)) as f32,
            ),
            SampleFormat::I16 => decode_loop(
                src,
                out,
                endian,
                |b| i16::from_be_bytes(arr2(b)) as f32,
                |b| i16::from_le_bytes(arr2(b)) as f32,
            ),
            SampleFormat::U16 => decode_loop(
                src,
                out,
                endian,
                |b| u16::from_be_bytes(arr2(b)) as f32,
                |b| u16::from_le_bytes(arr2(b)) as f32,
            ),
            SampleFormat::I64 => decode_loop(
                src,
                out,
                endian,
                |b| i64::from_be_bytes(arr8(b)) as f32,
                |b| i64::from_le_bytes(arr8(b)) as f32,
            ),
            SampleFormat::U64 => decode_loop(
                src,
                out,
                endian,
                |b| u64::from_be_bytes(arr8(b)) as f32,
                |b| u64::from_le_bytes(arr8(b)) as f32,
            ),
            SampleFormat::I24 => {
                decode_loop(src, out, endian, |b| i24_be(b) as f32, |b| i24_le(b) as f32)
            }
            SampleFormat::U24 => {
                decode_loop(src, out, endian, |b| u24_be(b) as f32, |b| u24_le(b) as f32)
            }
            SampleFormat::I8 => {
                for (o, &b) in out.iter_mut().zip(src) {
                    *o = b as i8 as f32;
                }
            }
            SampleFormat::U8 => {
                for (o, &b) in out.iter_mut().zip(src) {
                    *o = b as f32;
                }
            }
        }
    }

    /// Decodes `n` samples into their native type, written as little-endian bytes into
    /// `out` (`n * native().size()` bytes): the payload of a `.npy` file.
    pub fn decode_native_le(self, endian: Endian, src: &[u8], n: usize, out: &mut [u8]) {
        let sz = self.size();
        let src = &src[..n * sz];
        match self {
            SampleFormat::Ibm => {
                for (o, w) in out.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                    let u = match endian {
                        Endian::Big => u32::from_be_bytes(arr4(w)),
                        Endian::Little => u32::from_le_bytes(arr4(w)),
                    };
                    o.copy_from_slice(&ibm_to_ieee(u).to_le_bytes());
                }
            }
            SampleFormat::I24 | SampleFormat::U24 => {
                let signed = self == SampleFormat::I24;
                for (o, w) in out.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                    let v: u32 = match (endian, signed) {
                        (Endian::Big, true) => i24_be(w) as u32,
                        (Endian::Little, true) => i24_le(w) as u32,
                        (Endian::Big, false) => u24_be(w),
                        (Endian::Little, false) => u24_le(w),
                    };
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => {
                let out = &mut out[..n * sz];
                out.copy_from_slice(src);
                if endian == Endian::Big && sz > 1 {
                    for w in out.chunks_exact_mut(sz) {
                        w.reverse();
                    }
                }
            }
        }
    }

    /// Encodes native-type little-endian values (as produced by [`decode_native_le`]) into
    /// this format in `endian` byte order. `dst` holds `n * size()` bytes.
    ///
    /// [`decode_native_le`]: SampleFormat::decode_native_le
    pub fn encode_native_le(self, endian: Endian, src: &[u8], n: usize, dst: &mut [u8]) {
        let sz = self.size();
        let dst = &mut dst[..n * sz];
        match self {
            SampleFormat::Ibm => {
                for (o, w) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                    let ibm = ieee_to_ibm(u32::from_le_bytes(arr4(w)));
                    o.copy_from_slice(&match endian {
                        Endian::Big => ibm.to_be_bytes(),
                        Endian::Little => ibm.to_le_bytes(),
                    });
                }
            }
            SampleFormat::I24 | SampleFormat::U24 => {
                for (o, w) in dst.chunks_exact_mut(3).zip(src.chunks_exact(4)) {
                    let b = u32::from_le_bytes(arr4(w)).to_le_bytes();
                    match endian {
                        Endian::Little => o.copy_from_slice(&b[..3]),
                        Endian::Big => o.copy_from_slice(&[b[2], b[1], b[0]]),
                    }
                }
            }
            _ => {
                dst.copy_from_slice(&src[..n * sz]);
                if endian == Endian::Big && sz > 1 {
                    for w in dst.chunks_exact_mut(sz) {
                        w.reverse();
                    }
                }
            }
        }
    }

    /// Encodes `f32` samples into this format. Values are rounded to the nearest integer
    /// and saturated at the integer type's limits (NaN becomes 0) for integer formats.
    pub fn encode_f32(self, endian: Endian, src: &[f32], dst: &mut [u8]) {
        let sz = self.size();
        let dst = &mut dst[..src.len() * sz];
        macro_rules! ints {
            ($t:ty) => {
                for (o, &v) in dst.chunks_exact_mut(sz).zip(src) {
                    let x = v.round() as $t;
                    o.copy_from_slice(&match endian {
                        Endian::Big => x.to_be_bytes(),
                        Endian::Little => x.to_le_bytes(),
                    });
                }
            };
        }
        match self {
            SampleFormat::Ibm => {
                for (o, &v) in dst.chunks_exact_mut(4).zip(src) {
                    let ibm = ieee_to_ibm(v.to_bits());
                    o.copy_from_slice(&match endian {
                        Endian::Big => ibm.to_be_bytes(),
                        Endian::Little => ibm.to_le_bytes(),
                    });
                }
            }
            SampleFormat::F32 => {
                for (o, &v) in dst.chunks_exact_mut(4).zip(src) {
                    o.copy_from_slice(&match endian {
                        Endian::Big => v.to_be_bytes(),
                        Endian::Little => v.to_le_bytes(),
                    });
                }
            }
            SampleFormat::F64 => {
                for (o, &v) in dst.chunks_exact_mut(8).zip(src) {
                    let v = v as f64;
                    o.copy_from_slice(&match endian {
                        Endian::Big => v.to_be_bytes(),
                        Endian::Little => v.to_le_bytes(),
                    });
                }
            }
            SampleFormat::I8 => ints!(i8),
            SampleFormat::U8 => ints!(u8),
            SampleFormat::I16 => ints!(i16),
            SampleFormat::U16 => ints!(u16),
            SampleFormat::I32 => ints!(i32),
            SampleFormat::U32 => ints!(u32),
            SampleFormat::I64 => ints!(i64),
            SampleFormat::U64 => ints!(u64),
            SampleFormat::I24 | SampleFormat::U24 => {
                let (lo, hi) = if self == SampleFormat::I24 {
                    (-(1i64 << 23), (1i64 << 23) - 1)
                } else {
                    (0, (1i64 << 24) - 1)
                };
                for (o, &v) in dst.chunks_exact_mut(3).zip(src) {
                    let x = (v.round() as i64).clamp(lo, hi) as u32;
                    let b = x.to_le_bytes();
                    match endian {
                        Endian::Little => o.copy_from_slice(&b[..3]),
                        Endian::Big => o.copy_from_slice(&[b[2], b[1], b[0]]),
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn decode_loop(
    src: &[u8],
    out: &mut [f32],
    endian: Endian,
    be: impl Fn(&[u8]) -> f32,
    le: impl Fn(&[u8]) -> f32,
) {
    let sz = src.len() / out.len().max(1);
    if sz == 0 {
        return;
    }
    match endian {
        Endian::Big => {
            for (o, b) in out.iter_mut().zip(src.chunks_exact(sz)) {
                *o = be(b);
            }
        }
        Endian::Little => {
            for (o, b) in out.iter_mut().zip(src.chunks_exact(sz)) {
                *o = le(b);
            }
        }
    }
}

#[inline(always)]
fn arr2(b: &[u8]) -> [u8; 2] {
    [b[0], b[1]]
}
#[inline(always)]
fn arr4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}
#[inline(always)]
fn arr8(b: &[u8]) -> [u8; 8] {
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
}
#[inline(always)]
fn i24_be(b: &[u8]) -> i32 {
    (((b[0] as u32) << 24 | (b[1] as u32) << 16 | (b[2] as u32) << 8) as i32) >> 8
}
#[inline(always)]
fn i24_le(b: &[u8]) -> i32 {
    (((b[2] as u32) << 24 | (b[1] as u32) << 16 | (b[0] as u32) << 8) as i32) >> 8
}
#[inline(always)]
fn u24_be(b: &[u8]) -> u32 {
    (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32
}
#[inline(always)]
fn u24_le(b: &[u8]) -> u32 {
    (b[2] as u32) << 16 | (b[1] as u32) << 8 | b[0] as u32
}

/// IBM hexadecimal float bits to IEEE single bits, truncating (the algorithm of segyio and
/// Seismic Unix). Values too large saturate to the largest float of their sign; values too
/// small become +0. Branch-free, so loops over it vectorise.
#[inline(always)]
pub fn ibm_to_ieee(u: u32) -> u32 {
    let mant = u & 0x00ff_ffff;
    let ix = mant >> 21;
    // Shift that normalises the leading hex digit: 3 for 0, 2 for 1, 1 for 2-3, 0 for 4-7.
    let shift = (ix < 4) as u32 + (ix < 2) as u32 + (ix < 1) as u32;
    let it = 0x20c0_0000u32 + (shift << 22);
    let iexp = ((u & 0x7f00_0000).wrapping_sub(it)) << 1;
    let mut m = (mant << shift).wrapping_add(iexp);
    let inabs = u & 0x7fff_ffff;
    m = if inabs > 0x611f_ffff { 0x7fff_ffff } else { m };
    m |= u & 0x8000_0000;
    if inabs < 0x2120_0000 {
        0
    } else {
        m
    }
}

/// IEEE single bits to IBM hexadecimal float bits (segyio's conversion: exact for every
/// float that an IBM float can hold; otherwise the mantissa is truncated).
#[inline(always)]
pub fn ieee_to_ibm(u: u32) -> u32 {
    const IT: [u32; 4] = [0x2120_0000, 0x2140_0000, 0x2180_0000, 0x2210_0000];
    const MT: [u32; 4] = [2, 4, 8, 1];
    let ix = ((u & 0x0180_0000) >> 23) as usize;
    let iexp = ((u & 0x7e00_0000) >> 1).wrapping_add(IT[ix]);
    let manthi = (MT[ix].wrapping_mul(u & 0x007f_ffff)) >> 3;
    let m = manthi.wrapping_add(iexp) | (u & 0x8000_0000);
    if u & 0x7fff_ffff != 0 {
        m
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference algorithm, written with the two lookup tables.
    fn ibm_reference(u: u32) -> u32 {
        const IT: [u32; 8] = [
            0x21800000, 0x21400000, 0x21000000, 0x21000000, 0x20c00000, 0x20c00000, 0x20c00000,
            0x20c00000,
        ];
        const MT: [u32; 8] = [8, 4, 2, 2, 1, 1, 1, 1];
        let mut manthi = u & 0x00ffffff;
        let ix = (manthi >> 21) as usize;
        let iexp = ((u & 0x7f000000).wrapping_sub(IT[ix])) << 1;
        manthi = manthi.wrapping_mul(MT[ix]).wrapping_add(iexp);
        let inabs = u & 0x7fffffff;
        if inabs > 0x611FFFFF {
            manthi = 0x7FFFFFFF;
        }
        manthi |= u & 0x80000000;
        if inabs < 0x21200000 {
            0
        } else {
            manthi
        }
    }

    #[test]
    fn ibm_branch_free_matches_table_version() {
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2_000_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            assert_eq!(ibm_to_ieee(x), ibm_reference(x), "{x:#010x}");
        }
        for u in [
            0u32,
            0x8000_0000,
            0x4110_0000,
            0xc110_0000,
            0x7fff_ffff,
            0x0010_0000,
        ] {
            assert_eq!(ibm_to_ieee(u), ibm_reference(u), "{u:#010x}");
        }
    }

    #[test]
    fn ibm_known_values() {
        // 1.0 = 0x41100000, -118.625 = 0xC276A000 (the textbook example).
        assert_eq!(f32::from_bits(ibm_to_ieee(0x4110_0000)), 1.0);
        assert_eq!(f32::from_bits(ibm_to_ieee(0xC276_A000)), -118.625);
        assert_eq!(ieee_to_ibm(1.0f32.to_bits()), 0x4110_0000);
        assert_eq!(ieee_to_ibm((-118.625f32).to_bits()), 0xC276_A000);
    }

    #[test]
    fn ibm_round_trip_of_representable_values() {
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(x);
            if !f.is_finite() || f == 0.0 || f.abs() < 1e-30 || f.abs() > 1e30 {
                continue;
            }
            // Values with at most 21 significant bits are exact in IBM.
            let g = f32::from_bits(x & 0xffff_fff8);
            let back = f32::from_bits(ibm_to_ieee(ieee_to_ibm(g.to_bits())));
            assert_eq!(back, g, "{g:e}");
        }
    }

    #[test]
    fn native_round_trip_every_format() {
        for fmt in ALL_FORMATS {
            for endian in [Endian::Big, Endian::Little] {
                let nt = fmt.native();
                let n = 257;
                let mut native = vec![0u8; n * nt.size()];
                let mut s: u64 = 7;
                for b in native.iter_mut() {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    *b = (s >> 33) as u8;
                }
                // Make the values representable in the format.
                match fmt {
                    SampleFormat::Ibm => {
                        for w in native.chunks_exact_mut(4) {
                            let v = (u32::from_le_bytes(arr4(w)) % 2_000_000) as f32 - 1e6;
                            w.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    SampleFormat::F32 | SampleFormat::F64 => {
                        for w in native.chunks_exact_mut(nt.size()) {
                            w[nt.size() - 1] &= 0x3f;
                        }
                    }
                    SampleFormat::I24 => {
                        for w in native.chunks_exact_mut(4) {
                            let v = ((u32::from_le_bytes(arr4(w)) << 8) as i32) >> 8;
                            w.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    SampleFormat::U24 => {
                        for w in native.chunks_exact_mut(4) {
                            w[3] = 0;
                        }
                    }
                    _ => {}
                }
                let mut enc = vec![0u8; n * fmt.size()];
                fmt.encode_native_le(endian, &native, n, &mut enc);
                let mut dec = vec![0u8; n * nt.size()];
                fmt.decode_native_le(endian, &enc, n, &mut dec);
                assert_eq!(dec, native, "{fmt:?} {endian:?}");
                // f32 decoding agrees with the native values.
                let mut f = vec![0f32; n];
                fmt.decode_f32(endian, &enc, &mut f);
                let mut f2 = vec![0f32; n];
                let mut tmp = vec![0u8; n * fmt.size()];
                fmt.encode_f32(endian, &f, &mut tmp);
                fmt.decode_f32(endian, &tmp, &mut f2);
                if matches!(fmt, SampleFormat::Ibm | SampleFormat::F32) {
                    assert_eq!(f, f2, "{fmt:?}");
                }
            }
        }
    }

    #[test]
    fn codes_are_consistent() {
        for fmt in ALL_FORMATS {
            assert_eq!(SampleFormat::from_code(fmt.code() as i32), Some(fmt));
        }
        assert_eq!(SampleFormat::from_code(4), None);
        assert!(SampleFormat::is_known_code(4));
        assert!(!SampleFormat::is_known_code(13));
    }
}
