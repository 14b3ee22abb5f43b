//! The vector buffer: an immutable `[f32]` whose memory is asked to be backed by huge pages.
//!
//! Graph search reads vectors at random: with 4 KiB pages almost every vector costs a TLB
//! miss once the buffer is larger than the TLB's reach (a few MiB). On Linux the buffer is
//! therefore allocated 2 MiB-aligned and `madvise(MADV_HUGEPAGE)`d before it is first
//! written, so that transparent huge pages back it when the system allows them (`enabled` set to
//! `always` or `madvise`). Elsewhere, or when the advice is refused, it is an ordinary aligned
//! allocation: the advice changes speed, never contents.

use std::alloc::{self, Layout};
use std::ops::Deref;
use std::ptr::NonNull;

/// Buffers at least this large get huge-page alignment and advice.
const HUGE: usize = 2 << 20;

pub(crate) struct VecBuf {
    ptr: NonNull<f32>,
    len: usize,
    layout: Option<Layout>,
}

// SAFETY: `VecBuf` owns its allocation and only hands out shared references to it.
unsafe impl Send for VecBuf {}
unsafe impl Sync for VecBuf {}

impl VecBuf {
    pub fn from_slice(data: &[f32]) -> VecBuf {
        let bytes = std::mem::size_of_val(data);
        if bytes == 0 {
            return VecBuf {
                ptr: NonNull::dangling(),
                len: 0,
                layout: None,
            };
        }
        let (align, size) = if bytes >= HUGE {
            (HUGE, bytes.div_ceil(HUGE) * HUGE)
        } else {
            (64, bytes)
        };
        let layout = Layout::from_size_align(size, align).expect("valid layout");
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw as *mut f32) else {
            alloc::handle_alloc_error(layout)
        };
        if align == HUGE {
            advise_huge(raw, size);
        }
        // SAFETY: the allocation holds `size >= bytes` bytes, is aligned for f32 and does not
        // overlap `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
        VecBuf {
            ptr,
            len: data.len(),
            layout: Some(layout),
        }
    }
}

#[cfg(target_os = "linux")]
fn advise_huge(ptr: *mut u8, size: usize) {
    // SAFETY: `ptr..ptr + size` is one allocation we own, 2 MiB-aligned and a multiple of
    // 2 MiB long. MADV_HUGEPAGE only changes how future page faults are served; its result is
    // deliberately ignored (the kernel may not support or allow it).
    unsafe {
        libc::madvise(ptr as *mut libc::c_void, size, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_ptr: *mut u8, _size: usize) {}

impl Deref for VecBuf {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `ptr` points to `len` initialised floats (or is dangling with `len` 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for VecBuf {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: allocated in `from_slice` with this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr() as *mut u8, layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_data() {
        for n in [0usize, 1, 17, (HUGE / 4) + 3] {
            let data: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b = VecBuf::from_slice(&data);
            assert_eq!(&*b, data.as_slice());
        }
    }
}
