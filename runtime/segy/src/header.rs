//! Textual, binary and trace headers: field tables and decoding.

use crate::format::Endian;
use serde::Serialize;

/// Size of a textual header, in bytes.
pub const TEXT_SIZE: usize = 3200;
/// Size of the binary header, in bytes.
pub const BINARY_SIZE: usize = 400;
/// Size of a trace header, in bytes.
pub const TRACE_HEADER_SIZE: usize = 240;

/// How a textual header is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoding {
    Ebcdic,
    Ascii,
}

impl TextEncoding {
    /// "ebcdic" or "ascii".
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Ebcdic => "ebcdic",
            TextEncoding::Ascii => "ascii",
        }
    }
}

pub(crate) const EBCDIC_TO_ASCII: [u8; 256] = [
    0, 1, 2, 3, 156, 9, 134, 127, 151, 141, 142, 11, 12, 13, 14, 15, 16, 17, 18, 19, 157, 133, 8,
    135, 24, 25, 146, 143, 28, 29, 30, 31, 128, 129, 130, 131, 132, 10, 23, 27, 136, 137, 138, 139,
    140, 5, 6, 7, 144, 145, 22, 147, 148, 149, 150, 4, 152, 153, 154, 155, 20, 21, 158, 26, 32,
    160, 161, 162, 163, 164, 165, 166, 167, 168, 91, 46, 60, 40, 43, 33, 38, 169, 170, 171, 172,
    173, 174, 175, 176, 177, 93, 36, 42, 41, 59, 94, 45, 47, 178, 179, 180, 181, 182, 183, 184,
    185, 124, 44, 37, 95, 62, 63, 186, 187, 188, 189, 190, 191, 192, 193, 194, 96, 58, 35, 64, 39,
    61, 34, 195, 97, 98, 99, 100, 101, 102, 103, 104, 105, 196, 197, 198, 199, 200, 201, 202, 106,
    107, 108, 109, 110, 111, 112, 113, 114, 203, 204, 205, 206, 207, 208, 209, 126, 115, 116, 117,
    118, 119, 120, 121, 122, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 123, 65, 66, 67, 68, 69, 70, 71, 72, 73, 232, 233, 234,
    235, 236, 237, 125, 74, 75, 76, 77, 78, 79, 80, 81, 82, 238, 239, 240, 241, 242, 243, 92, 159,
    83, 84, 85, 86, 87, 88, 89, 90, 244, 245, 246, 247, 248, 249, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 250, 251, 252, 253, 254, 255,
];

/// Guesses the encoding of a textual header: EBCDIC text is dominated by bytes at or above
/// 0x80 (letters and digits) and 0x40 (space); ASCII text by printable bytes below 0x80.
pub fn detect_text_encoding(bytes: &[u8]) -> TextEncoding {
    let mut ascii = 0usize;
    let mut ebcdic = 0usize;
    for &b in bytes {
        match b {
            // EBCDIC space, letters and digits.
            0x40 | 0x81..=0xa9 | 0xc1..=0xf9 => ebcdic += 1,
            0x20..=0x7e | b'\n' | b'\r' => ascii += 1,
            _ => {}
        }
    }
    if ebcdic > ascii {
        TextEncoding::Ebcdic
    } else {
        TextEncoding::Ascii
    }
}

/// Decodes a textual header into a string of one character per byte (EBCDIC through the
/// standard conversion table; bytes above 0x7f map to the Latin-1 character of that code).
pub fn decode_text(bytes: &[u8], encoding: TextEncoding) -> String {
    bytes
        .iter()
        .map(|&b| match encoding {
            TextEncoding::Ebcdic => EBCDIC_TO_ASCII[b as usize] as char,
            TextEncoding::Ascii => b as char,
        })
        .collect()
}

/// Encodes text into a 3200-byte textual header: padded with spaces, characters outside
/// Latin-1 replaced with `?`.
pub fn encode_text(text: &str, encoding: TextEncoding) -> [u8; TEXT_SIZE] {
    let mut out = [b' '; TEXT_SIZE];
    for (o, c) in out.iter_mut().zip(text.chars()) {
        *o = if (c as u32) < 256 {
            c as u32 as u8
        } else {
            b'?'
        };
    }
    if encoding == TextEncoding::Ebcdic {
        let mut a2e = [0u8; 256];
        for (e, &a) in EBCDIC_TO_ASCII.iter().enumerate() {
            a2e[a as usize] = e as u8;
        }
        for b in out.iter_mut() {
            *b = a2e[*b as usize];
        }
    }
    out
}

/// Reads a big- or little-endian integer of `len` bytes (1, 2, 4 or 8) at `pos`.
pub(crate) fn read_int(buf: &[u8], pos: usize, len: usize, signed: bool, endian: Endian) -> i64 {
    let b = &buf[pos..pos + len];
    let mut v: u64 = 0;
    match endian {
        Endian::Big => {
            for &x in b {
                v = v << 8 | x as u64;
            }
        }
        Endian::Little => {
            for &x in b.iter().rev() {
                v = v << 8 | x as u64;
            }
        }
    }
    if signed && len < 8 {
        let shift = 64 - 8 * len as u32;
        ((v << shift) as i64) >> shift
    } else {
        v as i64
    }
}

/// Writes an integer of `len` bytes at `pos`.
pub(crate) fn write_int(buf: &mut [u8], pos: usize, len: usize, value: i64, endian: Endian) {
    let bytes = value.to_le_bytes();
    let b = &mut buf[pos..pos + len];
    match endian {
        Endian::Little => b.copy_from_slice(&bytes[..len]),
        Endian::Big => {
            for (i, o) in b.iter_mut().enumerate() {
                *o = bytes[len - 1 - i];
            }
        }
    }
}

/// A header field: its name, its first byte (1-based, as the standard numbers them, relative
/// to the header's start), its width in bytes and whether it is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub byte: u16,
    pub len: u8,
    pub signed: bool,
}

const fn f(name: &'static str, byte: u16, len: u8) -> Field {
    Field {
        name,
        byte,
        len,
        signed: true,
    }
}
const fn u(name: &'static str, byte: u16, len: u8) -> Field {
    Field {
        name,
        byte,
        len,
        signed: false,
    }
}

/// The standard trace header fields (SEG-Y rev 1/2, bytes 1-240), named as segyio's
/// `TraceField`.
pub const TRACE_FIELDS: &[Field] = &[
    f("TRACE_SEQUENCE_LINE", 1, 4),
    f("TRACE_SEQUENCE_FILE", 5, 4),
    f("FieldRecord", 9, 4),
    f("TraceNumber", 13, 4),
    f("EnergySourcePoint", 17, 4),
    f("CDP", 21, 4),
    f("CDP_TRACE", 25, 4),
    f("TraceIdentificationCode", 29, 2),
    f("NSummedTraces", 31, 2),
    f("NStackedTraces", 33, 2),
    f("DataUse", 35, 2),
    f("offset", 37, 4),
    f("ReceiverGroupElevation", 41, 4),
    f("SourceSurfaceElevation", 45, 4),
    f("SourceDepth", 49, 4),
    f("ReceiverDatumElevation", 53, 4),
    f("SourceDatumElevation", 57, 4),
    f("SourceWaterDepth", 61, 4),
    f("GroupWaterDepth", 65, 4),
    f("ElevationScalar", 69, 2),
    f("SourceGroupScalar", 71, 2),
    f("SourceX", 73, 4),
    f("SourceY", 77, 4),
    f("GroupX", 81, 4),
    f("GroupY", 85, 4),
    f("CoordinateUnits", 89, 2),
    f("WeatheringVelocity", 91, 2),
    f("SubWeatheringVelocity", 93, 2),
    f("SourceUpholeTime", 95, 2),
    f("GroupUpholeTime", 97, 2),
    f("SourceStaticCorrection", 99, 2),
    f("GroupStaticCorrection", 101, 2),
    f("TotalStaticApplied", 103, 2),
    f("LagTimeA", 105, 2),
    f("LagTimeB", 107, 2),
    f("DelayRecordingTime", 109, 2),
    f("MuteTimeStart", 111, 2),
    f("MuteTimeEND", 113, 2),
    u("TRACE_SAMPLE_COUNT", 115, 2),
    f("TRACE_SAMPLE_INTERVAL", 117, 2),
    f("GainType", 119, 2),
    f("InstrumentGainConstant", 121, 2),
    f("InstrumentInitialGain", 123, 2),
    f("Correlated", 125, 2),
    f("SweepFrequencyStart", 127, 2),
    f("SweepFrequencyEnd", 129, 2),
    f("SweepLength", 131, 2),
    f("SweepType", 133, 2),
    f("SweepTraceTaperLengthStart", 135, 2),
    f("SweepTraceTaperLengthEnd", 137, 2),
    f("TaperType", 139, 2),
    f("AliasFilterFrequency", 141, 2),
    f("AliasFilterSlope", 143, 2),
    f("NotchFilterFrequency", 145, 2),
    f("NotchFilterSlope", 147, 2),
    f("LowCutFrequency", 149, 2),
    f("HighCutFrequency", 151, 2),
    f("LowCutSlope", 153, 2),
    f("HighCutSlope", 155, 2),
    f("YearDataRecorded", 157, 2),
    f("DayOfYear", 159, 2),
    f("HourOfDay", 161, 2),
    f("MinuteOfHour", 163, 2),
    f("SecondOfMinute", 165, 2),
    f("TimeBaseCode", 167, 2),
    f("TraceWeightingFactor", 169, 2),
    f("GeophoneGroupNumberRoll1", 171, 2),
    f("GeophoneGroupNumberFirstTraceOrigField", 173, 2),
    f("GeophoneGroupNumberLastTraceOrigField", 175, 2),
    f("GapSize", 177, 2),
    f("OverTravel", 179, 2),
    f("CDP_X", 181, 4),
    f("CDP_Y", 185, 4),
    f("INLINE_3D", 189, 4),
    f("CROSSLINE_3D", 193, 4),
    f("ShotPoint", 197, 4),
    f("ShotPointScalar", 201, 2),
    f("TraceValueMeasurementUnit", 203, 2),
    f("TransductionConstantMantissa", 205, 4),
    f("TransductionConstantPower", 209, 2),
    f("TransductionUnit", 211, 2),
    f("TraceIdentifier", 213, 2),
    f("ScalarTraceHeader", 215, 2),
    f("SourceType", 217, 2),
    f("SourceEnergyDirectionVertical", 219, 2),
    f("SourceEnergyDirectionXline", 221, 2),
    f("SourceEnergyDirectionIline", 223, 2),
    f("SourceMeasurementMantissa", 225, 4),
    f("SourceMeasurementExponent", 229, 2),
    f("SourceMeasurementUnit", 231, 2),
    f("UnassignedInt1", 233, 4),
    f("UnassignedInt2", 237, 4),
];

/// Integer fields of the rev 2 trace header extension 1 (the second 240-byte header of a
/// trace when the binary header announces additional trace headers). Floating-point fields
/// of the extension are listed in [`TRACE_EXT1_FLOAT_FIELDS`].
pub const TRACE_EXT1_INT_FIELDS: &[Field] = &[
    u("EXT_TRACE_SEQUENCE_LINE", 1, 8),
    u("EXT_TRACE_SEQUENCE_FILE", 9, 8),
    f("EXT_FieldRecord", 17, 8),
    f("EXT_CDP", 25, 8),
    u("EXT_TRACE_SAMPLE_COUNT", 137, 4),
    f("EXT_Nanoseconds", 141, 4),
    f("EXT_CableNumber", 153, 4),
    u("EXT_AdditionalTraceHeaders", 157, 2),
    f("EXT_LastTraceFlag", 159, 2),
];

/// 8-byte IEEE fields of the rev 2 trace header extension 1: name and first byte.
pub const TRACE_EXT1_FLOAT_FIELDS: &[(&str, u16)] = &[
    ("EXT_ReceiverGroupElevation", 33),
    ("EXT_ReceiverDepth", 41),
    ("EXT_SourceSurfaceElevation", 49),
    ("EXT_SourceDepth", 57),
    ("EXT_ReceiverDatumElevation", 65),
    ("EXT_SourceDatumElevation", 73),
    ("EXT_SourceWaterDepth", 81),
    ("EXT_GroupWaterDepth", 89),
    ("EXT_SourceX", 97),
    ("EXT_SourceY", 105),
    ("EXT_GroupX", 113),
    ("EXT_GroupY", 121),
    ("EXT_offset", 129),
    ("EXT_TRACE_SAMPLE_INTERVAL", 145),
    ("EXT_CDP_X", 161),
    ("EXT_CDP_Y", 169),
];

/// Binary header fields (bytes 3201-3600, numbered as in the standard), named as segyio's
/// `BinField` where it has them.
pub const BINARY_FIELDS: &[Field] = &[
    f("JobID", 3201, 4),
    f("LineNumber", 3205, 4),
    f("ReelNumber", 3209, 4),
    f("Traces", 3213, 2),
    f("AuxTraces", 3215, 2),
    f("Interval", 3217, 2),
    f("IntervalOriginal", 3219, 2),
    u("Samples", 3221, 2),
    u("SamplesOriginal", 3223, 2),
    f("Format", 3225, 2),
    f("EnsembleFold", 3227, 2),
    f("SortingCode", 3229, 2),
    f("VerticalSum", 3231, 2),
    f("SweepFrequencyStart", 3233, 2),
    f("SweepFrequencyEnd", 3235, 2),
    f("SweepLength", 3237, 2),
    f("Sweep", 3239, 2),
    f("SweepChannel", 3241, 2),
    f("SweepTaperStart", 3243, 2),
    f("SweepTaperEnd", 3245, 2),
    f("Taper", 3247, 2),
    f("CorrelatedTraces", 3249, 2),
    f("BinaryGainRecovery", 3251, 2),
    f("AmplitudeRecovery", 3253, 2),
    f("MeasurementSystem", 3255, 2),
    f("ImpulseSignalPolarity", 3257, 2),
    f("VibratoryPolarity", 3259, 2),
    f("ExtTraces", 3261, 4),
    f("ExtAuxTraces", 3265, 4),
    f("ExtSamples", 3269, 4),
    f("ExtSamplesOriginal", 3289, 4),
    f("ExtEnsembleFold", 3293, 4),
    u("ByteOrderConstant", 3297, 4),
    u("SEGYRevision", 3501, 1),
    u("SEGYRevisionMinor", 3502, 1),
    f("TraceFlag", 3503, 2),
    f("ExtendedHeaders", 3505, 2),
    f("MaxAdditionalTraceHeaders", 3507, 4),
    f("TimeBasisCode", 3511, 2),
    u("NrTracesInFile", 3513, 8),
    u("FirstTraceOffset", 3521, 8),
    f("NrTrailerRecords", 3529, 4),
];

/// Looks a trace header field up by name (case-insensitive; segyio's names, plus
/// `iline`/`inline`, `xline`/`crossline`, `cdp_x`, `cdp_y`).
pub fn trace_field_by_name(name: &str) -> Option<&'static Field> {
    let alias = match name.to_ascii_lowercase().as_str() {
        "iline" | "inline" | "il" => "INLINE_3D",
        "xline" | "crossline" | "xl" => "CROSSLINE_3D",
        _ => name,
    };
    TRACE_FIELDS
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(alias))
}

/// The field starting at `byte` (1-based), if a standard one does.
pub fn trace_field_at(byte: u16) -> Option<&'static Field> {
    TRACE_FIELDS.iter().find(|f| f.byte == byte)
}

/// Reads a field from a header that starts at `buf[0]` (`base` is the byte number of the
/// header's first byte: 1 for trace headers, 3201 for the binary header).
pub fn get(buf: &[u8], field: &Field, base: u16, endian: Endian) -> i64 {
    read_int(
        buf,
        (field.byte - base) as usize,
        field.len as usize,
        field.signed,
        endian,
    )
}

/// Writes a field into a header buffer (see [`get`] for `base`).
pub fn set(buf: &mut [u8], field: &Field, base: u16, value: i64, endian: Endian) {
    write_int(
        buf,
        (field.byte - base) as usize,
        field.len as usize,
        value,
        endian,
    )
}

/// Applies a SEG-Y scalar: positive multiplies, negative divides, zero means 1.
pub fn apply_scalar(value: i64, scalar: i64) -> f64 {
    if scalar > 0 {
        value as f64 * scalar as f64
    } else if scalar < 0 {
        value as f64 / (-scalar) as f64
    } else {
        value as f64
    }
}

/// A key field used for geometry: a byte position (1-based) and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyField {
    pub byte: u16,
    pub len: u8,
}

impl KeyField {
    /// The key at `byte`: the width of the standard field starting there, else 4 bytes.
    /// `None` when the key would not fit in the 240-byte header.
    pub fn at(byte: u16) -> Option<KeyField> {
        let len = trace_field_at(byte).map(|f| f.len).unwrap_or(4);
        if byte == 0 || byte as usize + len as usize - 1 > TRACE_HEADER_SIZE {
            return None;
        }
        Some(KeyField { byte, len })
    }

    /// Reads this key from a trace header.
    #[inline]
    pub fn read(&self, header: &[u8], endian: Endian) -> i32 {
        let at = self.byte as usize - 1;
        if self.len == 4 {
            let b: [u8; 4] = header[at..at + 4].try_into().expect("4 bytes");
            return match endian {
                Endian::Big => i32::from_be_bytes(b),
                Endian::Little => i32::from_le_bytes(b),
            };
        }
        read_int(
            header,
            self.byte as usize - 1,
            self.len as usize,
            true,
            endian,
        ) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_ordered_and_fit() {
        let mut end = 1;
        for f in TRACE_FIELDS {
            assert_eq!(
                f.byte, end,
                "{} starts where the previous field ends",
                f.name
            );
            end = f.byte + f.len as u16;
        }
        assert_eq!(end, 241);
        for f in BINARY_FIELDS {
            assert!(
                f.byte >= 3201 && f.byte + f.len as u16 <= 3601,
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn text_round_trip_and_detection() {
        let text = "C 1 CLIENT: mlp    LINE 7";
        for enc in [TextEncoding::Ebcdic, TextEncoding::Ascii] {
            let bytes = encode_text(text, enc);
            assert_eq!(detect_text_encoding(&bytes), enc);
            let back = decode_text(&bytes, enc);
            assert!(back.starts_with(text));
            assert_eq!(back.len(), TEXT_SIZE);
        }
        // An all-blank EBCDIC header is EBCDIC.
        assert_eq!(detect_text_encoding(&[0x40; 3200]), TextEncoding::Ebcdic);
        assert_eq!(detect_text_encoding(&[b' '; 3200]), TextEncoding::Ascii);
    }

    #[test]
    fn ints_both_orders() {
        let mut b = [0u8; 8];
        for endian in [Endian::Big, Endian::Little] {
            for (len, v) in [(2, -3i64), (4, -70000), (1, 200), (8, i64::MIN)] {
                write_int(&mut b, 0, len, v, endian);
                let signed = len != 1;
                assert_eq!(read_int(&b, 0, len, signed, endian), v);
            }
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(apply_scalar(10000, -10), 1000.0);
        assert_eq!(apply_scalar(5, 100), 500.0);
        assert_eq!(apply_scalar(5, 0), 5.0);
    }
}
