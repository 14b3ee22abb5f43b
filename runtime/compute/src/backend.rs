//! The backend trait: buffers of `f32` and op dispatch. Implemented by the ndarray CPU backend
//! ([`crate::cpu::CpuBackend`]) and the wgpu GPU backend ([`crate::gpu::GpuBackend`]).

use crate::error::Result;
use crate::op::{Op, Shape};

/// A buffer handle, valid on the backend that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// A view of a buffer as a tensor: the buffer holds at least `numel(shape)` elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    pub buf: BufId,
    pub shape: Shape,
}

impl Tensor {
    pub fn new(buf: BufId, shape: impl Into<Shape>) -> Tensor {
        Tensor {
            buf,
            shape: shape.into(),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        crate::op::numel(&self.shape)
    }
}

/// Which kind of device a backend runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    Gpu,
}

/// A compute backend. Methods take `&self` (backends synchronise internally) so one backend can
/// be shared by a training loop and its evaluators.
pub trait Backend: Send + Sync {
    /// CPU or GPU.
    fn kind(&self) -> DeviceKind;
    /// A human-readable description (adapter name and driver for GPUs).
    fn describe(&self) -> String;
    /// A zero-filled buffer of `len` elements.
    fn alloc(&self, len: usize) -> Result<BufId>;
    /// Releases a buffer.
    fn free(&self, buf: BufId);
    /// Length of a buffer, in elements.
    fn len(&self, buf: BufId) -> Result<usize>;
    /// Copies `data` into the start of `buf`.
    fn upload(&self, buf: BufId, data: &[f32]) -> Result<()>;
    /// Copies the buffer back to the host (waits for queued work).
    fn download(&self, buf: BufId) -> Result<Vec<f32>>;
    /// Runs `op` on `inputs`, writing `outputs` (see [`Op`] for operand conventions). Shapes
    /// are checked with [`Op::output_shapes`]; the outputs' shapes must match.
    fn dispatch(&self, op: &Op, inputs: &[&Tensor], outputs: &[&Tensor]) -> Result<()>;
    /// Waits until all queued work has finished.
    fn sync(&self) -> Result<()>;
    /// The GPU backend itself, for what only it offers (per-kernel profiling); `None` for
    /// other backends.
    fn as_gpu(&self) -> Option<&crate::gpu::GpuBackend> {
        None
    }
}

/// Checks a dispatch's operands: shapes by the op's rules, buffer lengths, no output aliasing
/// an input or another output. Backends call this first.
pub fn check_dispatch(
    backend: &dyn Backend,
    op: &Op,
    inputs: &[&Tensor],
    outputs: &[&Tensor],
) -> Result<()> {
    use crate::error::{shape_err, ComputeError};
    for (what, list) in [("input", inputs), ("output", outputs)] {
        for (k, t) in list.iter().enumerate() {
            if crate::op::checked_numel(&t.shape).is_none() {
                return Err(shape_err(
                    op.name(),
                    format!(
                        "{what} {k} has shape {:?}, more elements than fit in memory",
                        t.shape
                    ),
                ));
            }
        }
    }
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let want = op.output_shapes(&shapes)?;
    if want.len() != outputs.len() {
        return Err(shape_err(
            op.name(),
            format!("produces {} outputs, {} given", want.len(), outputs.len()),
        ));
    }
    for (k, (w, o)) in want.iter().zip(outputs).enumerate() {
        if *w != o.shape {
            return Err(shape_err(
                op.name(),
                format!("output {k} must have shape {w:?}, got {:?}", o.shape),
            ));
        }
    }
    for t in inputs.iter().chain(outputs) {
        let len = backend.len(t.buf)?;
        if len < t.numel() {
            return Err(ComputeError::Buffer(format!(
                "{}: buffer {:?} holds {len} elements, shape {:?} needs {}",
                op.name(),
                t.buf,
                t.shape,
                t.numel()
            )));
        }
    }
    for (k, o) in outputs.iter().enumerate() {
        if inputs.iter().any(|i| i.buf == o.buf) || outputs[..k].iter().any(|p| p.buf == o.buf) {
            return Err(ComputeError::Buffer(format!(
                "{}: output {k} aliases another operand",
                op.name()
            )));
        }
    }
    Ok(())
}

/// Host memory this process may still take, in bytes: `MemAvailable` plus free swap from
/// `/proc/meminfo`; `None` where that is unknown (other systems).
pub fn host_memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = info.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb.saturating_mul(1024))
    };
    let avail = field("MemAvailable:")?;
    Some(avail.saturating_add(field("SwapFree:").unwrap_or(0)))
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Checks that `elements` f32 values (for `what`, named in the error) fit in host memory,
/// before anything is allocated: an allocation the system cannot serve aborts the process
/// rather than failing, so sizes are checked against the memory available (Linux) and by a
/// fallible reservation that is released at once (everywhere).
pub fn check_host_memory(elements: usize, what: &str) -> Result<()> {
    use crate::error::ComputeError;
    let too_big = |detail: String| {
        ComputeError::HostOutOfMemory(format!("{what}: {elements} f32 values{detail}"))
    };
    let bytes = elements
        .checked_mul(std::mem::size_of::<f32>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| too_big(", more bytes than the address space holds".into()))?;
    if let Some(avail) = host_memory_available() {
        if bytes as u64 > avail {
            return Err(too_big(format!(
                " ({}), more than the {} of memory available",
                gib(bytes as u64),
                gib(avail)
            )));
        }
    }
    let mut probe: Vec<f32> = Vec::new();
    probe
        .try_reserve_exact(elements)
        .map_err(|e| too_big(format!(" ({}): {e}", gib(bytes as u64))))?;
    Ok(())
}

/// Allocates a buffer of `len` elements for `what` (named in errors). On a CPU backend, whose
/// buffers live in host memory, the size is checked first with [`check_host_memory`], so an
/// impossible size is an error instead of an aborted process; GPU backends check their own
/// limits.
pub fn alloc_checked(backend: &dyn Backend, len: usize, what: &str) -> Result<BufId> {
    if backend.kind() == DeviceKind::Cpu {
        check_host_memory(len, what)?;
    }
    backend.alloc(len)
}
