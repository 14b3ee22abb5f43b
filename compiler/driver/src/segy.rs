//! `mlp segy`: inspect, export and synthesise SEG-Y files (the work is in `mlp-segy`).

use clap::{Args, Subcommand, ValueEnum};
use mlp_segy::file::FileKind;
use mlp_segy::report::Inspect;
use mlp_segy::synth::SynthSpec;
use mlp_segy::{Endian, OpenOptions, SampleFormat, SegyFile, TextEncoding, WriteOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum SegyCmd {
    /// Describe a SEG-Y or SU file: format, byte order, geometry, headers.
    Inspect {
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Write traces (or the cube) as .npy, and trace headers as Parquet.
    Export {
        file: PathBuf,
        /// The .npy to write: float32 [traces, samples] in file order, or with --cube
        /// [il, xl, (offset,) samples].
        #[arg(long)]
        out: PathBuf,
        /// Export the survey as a cube (missing traces of irregular surveys are zeros).
        #[arg(long)]
        cube: bool,
        /// Also write a bool [il, xl, (offset)] mask of the cells that hold a trace (--cube).
        #[arg(long, requires = "cube")]
        mask: Option<PathBuf>,
        /// Write every trace header (segyio field names, scaled coordinates) to Parquet.
        #[arg(long)]
        headers: Option<PathBuf>,
        /// Element type of traces: float32 (default) or the format's exact native type.
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Dtype,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Generate a labelled synthetic survey: folded layers, faults, Ricker wavelet, noise.
    Synth(SynthArgs),
}

#[derive(Copy, Clone, ValueEnum, PartialEq)]
pub enum Dtype {
    F32,
    Native,
}

#[derive(Args)]
pub struct KeyArgs {
    /// Trace header byte (1-based) of the inline number.
    #[arg(long, default_value_t = 189)]
    iline_byte: u16,
    /// Trace header byte of the crossline number.
    #[arg(long, default_value_t = 193)]
    xline_byte: u16,
    /// Trace header byte of the offset.
    #[arg(long, default_value_t = 37)]
    offset_byte: u16,
    /// Do not infer a geometry: read the file as plain traces.
    #[arg(long)]
    unstructured: bool,
    /// Byte order (detected when omitted).
    #[arg(long, value_parser = parse_endian)]
    endian: Option<Endian>,
    /// Read as Seismic Unix (default for .su files).
    #[arg(long)]
    su: bool,
}

#[derive(Args)]
pub struct SynthArgs {
    /// The SEG-Y file to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write the fault labels: uint8 [il, xl, samples], 1 on faults.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Survey size: inlines, crosslines, samples.
    #[arg(long, value_name = "IL,XL,SAMPLES", value_parser = parse_size)]
    size: [usize; 3],
    /// Sample format code: 1 (IBM), 2, 3, 5 (IEEE), 6, 7, 8, 9, 10, 11, 12, 15, 16.
    #[arg(long, default_value_t = 1)]
    format: i32,
    #[arg(long, default_value = "big", value_parser = parse_endian)]
    endian: Endian,
    /// Seed: the same seed gives the same file, byte for byte.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of faults.
    #[arg(long, default_value_t = 3)]
    faults: usize,
    /// Signal-to-noise ratio in dB of band-limited noise; `inf` for none.
    #[arg(long, default_value_t = 20.0)]
    snr: f64,
    /// Peak frequency of the Ricker wavelet, Hz.
    #[arg(long, default_value_t = 25.0)]
    peak_hz: f64,
    /// Sample interval, microseconds.
    #[arg(long, default_value_t = 4000)]
    dt_us: u32,
    /// SEG-Y revision to write: 1 or 2.
    #[arg(long, default_value_t = 1)]
    revision: u8,
    /// Textual header encoding.
    #[arg(long, value_enum, default_value = "ebcdic")]
    text_encoding: TextEnc,
}

#[derive(Copy, Clone, ValueEnum, PartialEq)]
pub enum TextEnc {
    Ebcdic,
    Ascii,
}

fn parse_endian(s: &str) -> Result<Endian, String> {
    s.parse()
}

fn parse_size(s: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != 3 {
        return Err(format!("expected IL,XL,SAMPLES (three numbers), got `{s}`"));
    }
    let mut out = [0usize; 3];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p
            .parse()
            .map_err(|_| format!("`{p}` is not a whole number"))?;
        if *o == 0 {
            return Err("every size must be at least 1".into());
        }
    }
    Ok(out)
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

fn open(file: &Path, keys: &KeyArgs) -> Result<SegyFile, ExitCode> {
    let opts = OpenOptions {
        iline: keys.iline_byte,
        xline: keys.xline_byte,
        offset: keys.offset_byte,
        unstructured: keys.unstructured,
        endian: keys.endian,
        kind: keys.su.then_some(FileKind::Su),
    };
    SegyFile::open(file, &opts).map_err(|e| match e {
        // I/O errors already name the path.
        mlp_segy::SegyError::Io { .. } => fail(e),
        _ => fail(format_args!("{}: {e}", file.display())),
    })
}

pub fn run(cmd: SegyCmd) -> ExitCode {
    match cmd {
        SegyCmd::Inspect { file, json, keys } => {
            let f = match open(&file, &keys) {
                Ok(f) => f,
                Err(code) => return code,
            };
            let report = Inspect::of(&f);
            let text = if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => s + "\n",
                    Err(e) => return fail(e),
                }
            } else {
                report.human()
            };
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => {}
                // A closed pipe (`| head`) is the reader's choice, not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return fail(format_args!("writing the report: {e}")),
            }
            ExitCode::SUCCESS
        }
        SegyCmd::Export {
            file,
            out,
            cube,
            mask,
            headers,
            dtype,
            keys,
        } => {
            let f = match open(&file, &keys) {
                Ok(f) => f,
                Err(code) => return code,
            };
            let req = mlp_segy::tools::ExportRequest {
                out,
                cube,
                native: dtype == Dtype::Native,
                mask: mask.clone(),
                headers,
            };
            match mlp_segy::tools::export(&f, &req) {
                Ok(0) => ExitCode::SUCCESS,
                Ok(missing) => {
                    eprintln!(
                        "note: {missing} trace(s) are missing from the grid and were written as \
                         zeros{}",
                        if mask.is_some() {
                            "; the mask marks them"
                        } else {
                            "; pass --mask to record which"
                        }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        SegyCmd::Synth(a) => synth(a),
    }
}

fn synth(a: SynthArgs) -> ExitCode {
    let format = match SampleFormat::from_code(a.format) {
        Some(f) => f,
        None if a.format == 4 => {
            return fail("format 4 (fixed point with gain) is obsolete and cannot be written")
        }
        None => {
            return fail(format_args!(
                "unknown sample format {}; choose 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 15 or 16",
                a.format
            ))
        }
    };
    if a.snr.is_nan() || a.snr == f64::NEG_INFINITY {
        return fail("--snr must be a number of dB, or inf for no noise");
    }
    let spec = SynthSpec {
        ilines: a.size[0],
        xlines: a.size[1],
        samples: a.size[2],
        seed: a.seed,
        faults: a.faults,
        snr_db: a.snr.is_finite().then_some(a.snr),
        peak_hz: a.peak_hz,
        dt_us: a.dt_us,
    };
    let opts = WriteOptions {
        revision: a.revision,
        format,
        endian: a.endian,
        samples: spec.samples,
        sample_interval_us: spec.dt_us,
        text: String::new(),
        text_encoding: match a.text_encoding {
            TextEnc::Ebcdic => TextEncoding::Ebcdic,
            TextEnc::Ascii => TextEncoding::Ascii,
        },
    };
    // Outputs are written under temporary names and renamed when complete, so a failure
    // leaves nothing behind and never touches existing files.
    match mlp_segy::tools::synth_to_file(&spec, &opts, &a.out, a.labels.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
