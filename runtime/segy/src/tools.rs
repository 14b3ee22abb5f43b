//! The work behind `mlp segy export` and `mlp segy synth`: streamed, bounded-memory
//! conversions between SEG-Y, `.npy` and Parquet.

use crate::error::{Result, SegyError};
use crate::file::SegyFile;
use crate::format::NativeType;
use crate::npy::{DType, NpyWriter};
use crate::synth::{Survey, SynthSpec};
use crate::write::{card_text, Grid, SegyWriter, WriteOptions};
use std::path::{Path, PathBuf};

/// Traces decoded per chunk when streaming (bounded memory whatever the file size).
const CHUNK_BYTES: usize = 64 << 20;

fn npy_err(path: &Path) -> impl Fn(std::io::Error) -> SegyError + '_ {
    move |e| SegyError::io(path, e)
}

/// An output written under a temporary name beside its final path and renamed into place
/// by [`Staged::commit`]; dropped uncommitted, the temporary file is removed. So a failed
/// command leaves no partial file behind and never touches an existing file of that name.
pub struct Staged {
    path: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl Staged {
    /// Reserves a temporary name for `path` and checks that it can be created there (so a
    /// missing folder or a read-only one is reported under the name the user gave).
    pub fn new(path: &Path) -> Result<Staged> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.mlp-tmp-{}", std::process::id()));
        std::fs::File::create(&tmp).map_err(|e| SegyError::io(path, e))?;
        Ok(Staged {
            path: path.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// Where to write.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Moves the written file to its final path.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path).map_err(|e| SegyError::io(&self.path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Whether two paths name the same existing file (hard links and symlinks included).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Refuses outputs that are the input or each other.
pub fn check_outputs(input: Option<&Path>, outputs: &[&Path]) -> Result<()> {
    for (k, o) in outputs.iter().enumerate() {
        if let Some(i) = input {
            if same_file(i, o) || i == *o {
                return Err(SegyError::Write(format!(
                    "the output {} is the input file; choose another name",
                    o.display()
                )));
            }
        }
        if outputs[..k].iter().any(|p| p == o || same_file(p, o)) {
            return Err(SegyError::Write(format!(
                "{} is named for two outputs",
                o.display()
            )));
        }
    }
    Ok(())
}

/// What `mlp segy export` writes.
#[derive(Clone, Debug, Default)]
pub struct ExportRequest {
    /// The `.npy` of traces (or of the cube with `cube`).
    pub out: PathBuf,
    pub cube: bool,
    /// Native sample type instead of float32 (trace export only).
    pub native: bool,
    /// The cube's mask (`cube` only).
    pub mask: Option<PathBuf>,
    /// Trace headers as Parquet.
    pub headers: Option<PathBuf>,
}

/// Runs an export: every output is written under a temporary name and all are moved into
/// place only when all succeeded. Returns the number of missing traces (cube exports).
pub fn export(f: &SegyFile, req: &ExportRequest) -> Result<usize> {
    let mut outs: Vec<&Path> = vec![&req.out];
    outs.extend(req.mask.as_deref());
    outs.extend(req.headers.as_deref());
    check_outputs(f.path(), &outs)?;
    if req.native && req.cube {
        return Err(SegyError::Write(
            "native sample types apply to trace export; cubes are float32".into(),
        ));
    }
    if req.mask.is_some() && !req.cube {
        return Err(SegyError::Write("a mask goes with a cube export".into()));
    }
    let out = Staged::new(&req.out)?;
    let mask = req.mask.as_deref().map(Staged::new).transpose()?;
    let headers = req.headers.as_deref().map(Staged::new).transpose()?;
    let missing = if req.cube {
        export_cube(f, out.tmp(), mask.as_ref().map(|m| m.tmp()))?
    } else {
        export_traces(f, out.tmp(), req.native)?;
        0
    };
    if let Some(h) = &headers {
        crate::table::write_parquet(f, h.tmp())?;
    }
    out.commit()?;
    if let Some(m) = mask {
        m.commit()?;
    }
    if let Some(h) = headers {
        h.commit()?;
    }
    Ok(missing)
}

/// The `.npy` dtype of a native sample type.
pub fn npy_dtype(t: NativeType) -> DType {
    match t {
        NativeType::F32 => DType::F32,
        NativeType::F64 => DType::F64,
        NativeType::I8 => DType::I8,
        NativeType::I16 => DType::I16,
        NativeType::I32 => DType::I32,
        NativeType::I64 => DType::I64,
        NativeType::U8 => DType::U8,
        NativeType::U16 => DType::U16,
        NativeType::U32 => DType::U32,
        NativeType::U64 => DType::U64,
    }
}

/// Writes every trace, in file order, as `[traces, samples]`: float32, or the format's
/// lossless native type when `native` is set.
pub fn export_traces(f: &SegyFile, out: &Path, native: bool) -> Result<()> {
    let ns = f.samples;
    let elem = if native { f.format.native().size() } else { 4 };
    let dtype = if native {
        npy_dtype(f.format.native())
    } else {
        DType::F32
    };
    let mut w = NpyWriter::create(out, dtype, &[f.traces, ns]).map_err(npy_err(out))?;
    let per = (CHUNK_BYTES / (ns * elem).max(1)).max(1);
    let mut start = 0;
    let mut fbuf: Vec<f32> = Vec::new();
    let mut bbuf: Vec<u8> = Vec::new();
    while start < f.traces {
        let end = (start + per).min(f.traces);
        if native {
            bbuf.resize((end - start) * ns * elem, 0);
            f.read_native_into(start..end, &mut bbuf)?;
            w.write_bytes(&bbuf).map_err(npy_err(out))?;
        } else {
            fbuf.resize((end - start) * ns, 0.0);
            f.read_traces_into(start..end, &mut fbuf)?;
            w.write_f32(&fbuf).map_err(npy_err(out))?;
        }
        f.release_traces(start..end);
        start = end;
    }
    w.finish().map_err(npy_err(out))
}

/// Writes the survey as a float32 cube `[il, xl, (offsets,) samples]`, inline by inline;
/// missing traces are zeros. With `mask`, also writes a bool `[il, xl, (offsets)]` volume
/// that is true where a trace exists. Returns the number of missing traces.
pub fn export_cube(f: &SegyFile, out: &Path, mask: Option<&Path>) -> Result<usize> {
    let shape = f.cube_shape()?;
    let cube = f
        .geometry
        .cube
        .as_ref()
        .expect("cube_shape checked the grid");
    let ns = f.samples;
    let mut w = NpyWriter::create(out, DType::F32, &shape).map_err(npy_err(out))?;
    let per_inline = cube.xlines.len() * cube.offsets.len();
    let mut buf = vec![0f32; per_inline * ns];
    for i in 0..cube.ilines.len() {
        let cells = &cube.index[i * per_inline..(i + 1) * per_inline];
        use rayon::prelude::*;
        let (fmt, e) = (f.format, f.endian);
        buf.par_chunks_mut(ns)
            .with_min_len(16)
            .zip(cells.par_iter())
            .for_each(|(row, &t)| {
                if t == crate::geometry::MISSING {
                    row.fill(0.0);
                } else {
                    fmt.decode_f32(e, f.trace_bytes(t as usize), row);
                }
            });
        w.write_f32(&buf).map_err(npy_err(out))?;
        // Inline-sorted files are read front to back: let the pages behind go.
        if let (Some(&lo), Some(&hi)) = (
            cells
                .iter()
                .filter(|&&t| t != crate::geometry::MISSING)
                .min(),
            cells
                .iter()
                .filter(|&&t| t != crate::geometry::MISSING)
                .max(),
        ) {
            if f.geometry.sorting == crate::geometry::Sorting::Inline {
                f.release_traces(lo as usize..hi as usize + 1);
            }
        }
    }
    w.finish().map_err(npy_err(out))?;
    if let Some(mpath) = mask {
        let mshape = &shape[..shape.len() - 1];
        let bits: Vec<u8> = cube
            .index
            .iter()
            .map(|&t| (t != crate::geometry::MISSING) as u8)
            .collect();
        let mut m = NpyWriter::create(mpath, DType::Bool, mshape).map_err(npy_err(mpath))?;
        m.write_bytes(&bits).map_err(npy_err(mpath))?;
        m.finish().map_err(npy_err(mpath))?;
    }
    Ok(cube.missing)
}

/// Generates a synthetic survey into a SEG-Y file (and its fault labels into a uint8
/// `[il, xl, samples]` `.npy`), one inline at a time. Inlines and crosslines are numbered
/// from 1; `opts.samples` and `opts.sample_interval_us` are taken from `spec`.
pub fn synth_to_file(
    spec: &SynthSpec,
    opts: &WriteOptions,
    out: &Path,
    labels: Option<&Path>,
) -> Result<()> {
    let survey = Survey::new(spec).map_err(|e| SegyError::Write(e.to_string()))?;
    let (ni, nx, ns) = (spec.ilines, spec.xlines, spec.samples);
    let mut opts = opts.clone();
    opts.samples = ns;
    opts.sample_interval_us = spec.dt_us;
    if opts.text.is_empty() {
        let snr = spec
            .snr_db
            .map(|s| format!("{s} dB"))
            .unwrap_or_else(|| "noise-free".into());
        let l1 = format!(
            "SYNTHETIC SURVEY GENERATED BY mlp segy synth, SEED {}",
            spec.seed
        );
        let l2 = format!(
            "{ni} INLINES x {nx} CROSSLINES x {ns} SAMPLES, DT {} US",
            spec.dt_us
        );
        let l3 = format!(
            "RICKER {} HZ, {} FAULTS, SNR {snr}, FORMAT {}",
            spec.peak_hz,
            spec.faults,
            opts.format.code()
        );
        let l4 = "INLINE BYTE 189, CROSSLINE BYTE 193, CDP X/Y BYTES 181/185 (SCALAR -100)";
        opts.text = card_text(&[
            &l1,
            &l2,
            &l3,
            l4,
            "LABELS: FAULT MASK IN A SEPARATE .NPY FILE",
        ]);
    }
    let mut outs = vec![out];
    outs.extend(labels);
    check_outputs(None, &outs)?;
    let staged_out = Staged::new(out)?;
    let staged_labels = labels.map(Staged::new).transpose()?;
    let (out, labels) = (staged_out.tmp(), staged_labels.as_ref().map(|l| l.tmp()));
    let mut w = SegyWriter::create(out, &opts)?;
    let mut lw = match labels {
        Some(p) => Some((
            NpyWriter::create(p, DType::U8, &[ni, nx, ns]).map_err(npy_err(p))?,
            p,
        )),
        None => None,
    };
    let grid = Grid::simple(ni, nx, 1, 1);
    let base = w.header();
    let mut amp = vec![0f32; nx * ns];
    let mut lab = vec![0u8; nx * ns];
    for i in 0..ni {
        survey.inline(i, &mut amp);
        for j in 0..nx {
            let h = grid.trace_header(&base, i, j, 0, (i * nx + j) as u64);
            w.write_trace(&h, &amp[j * ns..(j + 1) * ns])?;
        }
        if let Some((lw, p)) = lw.as_mut() {
            survey.inline_labels(i, &mut lab);
            lw.write_u8(&lab).map_err(npy_err(p))?;
        }
    }
    w.finish()?;
    if let Some((lw, p)) = lw {
        lw.finish().map_err(npy_err(p))?;
    }
    staged_out.commit()?;
    if let Some(l) = staged_labels {
        l.commit()?;
    }
    Ok(())
}
