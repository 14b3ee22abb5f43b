//! The CPU backend: host buffers and the ndarray/rayon kernels of [`kernels`].
//!
//! [`run`] and [`eval`] call the kernels directly on slices (for the graph executor and for
//! tests); [`CpuBackend`] implements [`Backend`] over buffers it owns.
//!
//! Results are deterministic: every reduction uses a fixed chunking that depends on the shapes
//! only, matrix products are tiled by shape, and the AVX2 and baseline versions of the hot
//! loops perform the same operations in the same order ([`par`]), so the same inputs (and the
//! same dropout seed) give bitwise the same outputs whatever the number of rayon threads.
//!
//! Matrix products run a packed AVX2/FMA kernel where the CPU has both features, chosen by the
//! CPU and the shapes only (not by [`par::set_avx2`]), with the same determinism.
//!
//! Module map: [`linalg`] (matmul, convolution, attention), `sgemm` (the packed AVX2/FMA
//! matrix product kernel, x86-64 only), [`norm`] (batch and layer norm, softmax), [`loss`]
//! (losses, optimizers), [`kernels`] (the rest, and the dispatch from [`Op`] to the kernels),
//! [`math`] (vectorisable exp, tanh, sigmoid, erf), [`par`] (parallel and SIMD helpers).

pub mod kernels;
pub mod linalg;
pub mod loss;
pub mod math;
pub mod norm;
pub mod par;
#[cfg(target_arch = "x86_64")]
pub mod sgemm;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::backend::{check_dispatch, Backend, BufId, DeviceKind, Tensor};
use crate::error::{ComputeError, Result};
use crate::op::{numel, Op, Shape};

/// Runs `op` on `inputs` (`(data, shape)` pairs), writing `outputs`, after checking the shapes
/// ([`Op::output_shapes`]) and that every slice holds at least the elements of its shape
/// (extra elements are ignored and left untouched). Outputs of in-place ops (optimizers) are
/// read as the current state; other outputs are overwritten.
pub fn run(op: &Op, inputs: &[(&[f32], &[usize])], outputs: &mut [&mut [f32]]) -> Result<()> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|(_, s)| *s).collect();
    let want = op.output_shapes(&shapes)?;
    if want.len() != outputs.len() {
        return Err(crate::error::shape_err(
            op.name(),
            format!("produces {} outputs, {} given", want.len(), outputs.len()),
        ));
    }
    let mut ins = Vec::with_capacity(inputs.len());
    for (k, (data, shape)) in inputs.iter().enumerate() {
        let n = numel(shape);
        if data.len() < n {
            return Err(ComputeError::Buffer(format!(
                "{}: input {k} holds {} elements, shape {shape:?} needs {n}",
                op.name(),
                data.len()
            )));
        }
        ins.push((&data[..n], *shape));
    }
    let mut outs: Vec<&mut [f32]> = Vec::with_capacity(outputs.len());
    for (k, (o, shape)) in outputs.iter_mut().zip(&want).enumerate() {
        let n = numel(shape);
        if o.len() < n {
            return Err(ComputeError::Buffer(format!(
                "{}: output {k} holds {} elements, shape {shape:?} needs {n}",
                op.name(),
                o.len()
            )));
        }
        outs.push(&mut o[..n]);
    }
    kernels::execute(op, &ins, &mut outs);
    Ok(())
}

/// Runs a non-in-place `op` and returns its outputs with their shapes.
pub fn eval(op: &Op, inputs: &[(&[f32], &[usize])]) -> Result<Vec<(Vec<f32>, Shape)>> {
    if op.in_place() {
        return Err(ComputeError::Other(format!(
            "{} updates its outputs in place: use cpu::run",
            op.name()
        )));
    }
    let shapes: Vec<&[usize]> = inputs.iter().map(|(_, s)| *s).collect();
    let want = op.output_shapes(&shapes)?;
    let mut bufs: Vec<Vec<f32>> = want
        .iter()
        .map(|s| zeroed(numel(s)))
        .collect::<Result<_>>()?;
    {
        let mut outs: Vec<&mut [f32]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        run(op, inputs, &mut outs)?;
    }
    Ok(bufs.into_iter().zip(want).collect())
}

/// A zeroed buffer of `len` floats, or an error naming the size where the system cannot
/// provide it (`vec![0.0; len]` would abort the process instead). Like `vec!`, it asks the
/// allocator for zeroed memory, so large buffers are not written twice.
pub(crate) fn zeroed(len: usize) -> Result<Vec<f32>> {
    let refused = || {
        ComputeError::HostOutOfMemory(format!(
            "a CPU buffer of {len} f32 values ({:.1} GiB)",
            len as f64 * 4.0 / (1u64 << 30) as f64
        ))
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<f32>(len).map_err(|_| refused())?;
    // SAFETY: `layout` has a non-zero size. A non-null result is an allocation of `len`
    // zeroed (valid) f32 values with the global allocator and f32's alignment, which is what
    // `Vec::from_raw_parts` requires for a vector of length and capacity `len`.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout) as *mut f32;
        if p.is_null() {
            return Err(refused());
        }
        Ok(Vec::from_raw_parts(p, len, len))
    }
}

/// The buffers, and the freed slots available for reuse.
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// A buffer slot.
enum Slot {
    Free,
    /// Taken out by a running dispatch that writes it.
    Busy(usize),
    Ready(Arc<Vec<f32>>),
}

/// The CPU backend. Buffers are host vectors; `dispatch` runs the kernels on the rayon pool.
///
/// Synchronisation: the buffer table is locked only briefly. A dispatch takes its output
/// buffers out of the table (marking them busy), shares its inputs (reference-counted) and
/// computes without holding the lock, so independent dispatches from several threads run
/// concurrently. An operation that touches a busy buffer waits until the dispatch writing it
/// has finished. Dispatches are synchronous: `sync` has nothing to wait for.
///
/// Buffer ids of freed buffers are reused by later allocations. A dispatch issued from inside
/// a rayon task that needs a buffer an enclosing dispatch on the same thread is writing would
/// wait for itself; dispatches that share no written buffer never wait.
pub struct CpuBackend {
    table: Mutex<Table>,
    done: Condvar,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    pub fn new() -> CpuBackend {
        CpuBackend {
            table: Mutex::new(Table::default()),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the table once none of `bufs` is busy; errors on unknown or freed buffers.
    fn lock_ready(&self, bufs: &[BufId]) -> Result<MutexGuard<'_, Table>> {
        let mut g = self.lock();
        loop {
            let mut busy = false;
            for b in bufs {
                match g.slots.get(b.0 as usize) {
                    None | Some(Slot::Free) => return Err(unknown(*b)),
                    Some(Slot::Busy(_)) => busy = true,
                    Some(Slot::Ready(_)) => {}
                }
            }
            if !busy {
                return Ok(g);
            }
            g = self.done.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn unknown(b: BufId) -> ComputeError {
    ComputeError::Buffer(format!("unknown or freed buffer {b:?}"))
}

fn ready(slot: &Slot) -> &Arc<Vec<f32>> {
    match slot {
        Slot::Ready(a) => a,
        _ => unreachable!("checked by lock_ready"),
    }
}

/// Puts taken output buffers back (also when a kernel panics) and wakes waiters.
struct Restore<'a> {
    backend: &'a CpuBackend,
    taken: Vec<(BufId, Arc<Vec<f32>>)>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let mut g = self.backend.lock();
        for (b, data) in self.taken.drain(..) {
            g.slots[b.0 as usize] = Slot::Ready(data);
        }
        drop(g);
        self.backend.done.notify_all();
    }
}

impl Backend for CpuBackend {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Cpu
    }

    fn describe(&self) -> String {
        format!(
            "CPU (ndarray + rayon, {} threads)",
            rayon::current_num_threads()
        )
    }

    fn alloc(&self, len: usize) -> Result<BufId> {
        let data = Slot::Ready(Arc::new(zeroed(len)?));
        let mut g = self.lock();
        // Freed slots are reused (last freed first), so the table does not grow without
        // bound in long runs.
        if let Some(id) = g.free.pop() {
            g.slots[id as usize] = data;
            return Ok(BufId(id));
        }
        let id = u32::try_from(g.slots.len())
            .map_err(|_| ComputeError::Buffer("too many buffers".into()))?;
        g.slots.push(data);
        Ok(BufId(id))
    }

    fn free(&self, buf: BufId) {
        if let Ok(mut g) = self.lock_ready(&[buf]) {
            g.slots[buf.0 as usize] = Slot::Free;
            g.free.push(buf.0);
        }
    }

    fn len(&self, buf: BufId) -> Result<usize> {
        match self.lock().slots.get(buf.0 as usize) {
            Some(Slot::Ready(a)) => Ok(a.len()),
            Some(Slot::Busy(n)) => Ok(*n),
            _ => Err(unknown(buf)),
        }
    }

    fn upload(&self, buf: BufId, data: &[f32]) -> Result<()> {
        let mut g = self.lock_ready(&[buf])?;
        let slot = &mut g.slots[buf.0 as usize];
        let Slot::Ready(a) = slot else {
            unreachable!("checked by lock_ready")
        };
        if data.len() > a.len() {
            return Err(ComputeError::Buffer(format!(
                "upload of {} elements into buffer {buf:?} of {}",
                data.len(),
                a.len()
            )));
        }
        Arc::make_mut(a)[..data.len()].copy_from_slice(data);
        Ok(())
    }

    fn download(&self, buf: BufId) -> Result<Vec<f32>> {
        let g = self.lock_ready(&[buf])?;
        Ok(ready(&g.slots[buf.0 as usize]).as_ref().clone())
    }

    fn dispatch(&self, op: &Op, inputs: &[&Tensor], outputs: &[&Tensor]) -> Result<()> {
        check_dispatch(self, op, inputs, outputs)?;
        let all: Vec<BufId> = inputs.iter().chain(outputs).map(|t| t.buf).collect();
        let (ins, taken) = {
            let mut g = self.lock_ready(&all)?;
            let ins: Vec<Arc<Vec<f32>>> = inputs
                .iter()
                .map(|t| ready(&g.slots[t.buf.0 as usize]).clone())
                .collect();
            let mut taken = Vec::with_capacity(outputs.len());
            for t in outputs {
                let slot = &mut g.slots[t.buf.0 as usize];
                let len = ready(slot).len();
                let Slot::Ready(a) = std::mem::replace(slot, Slot::Busy(len)) else {
                    unreachable!("checked by lock_ready")
                };
                taken.push((t.buf, a));
            }
            (ins, taken)
        };
        let mut restore = Restore {
            backend: self,
            taken,
        };
        let in_refs: Vec<(&[f32], &[usize])> = ins
            .iter()
            .zip(inputs)
            .map(|(a, t)| (&a[..t.numel()], t.shape.as_slice()))
            .collect();
        // An output still shared (a concurrent reader holds it) is copied on write.
        let mut out_refs: Vec<&mut [f32]> = restore
            .taken
            .iter_mut()
            .zip(outputs)
            .map(|((_, a), t)| &mut Arc::make_mut(a)[..t.numel()])
            .collect();
        kernels::execute(op, &in_refs, &mut out_refs);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}
