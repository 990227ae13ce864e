//! An allocator adaptor that gives large blocks mappings of their own.
//!
//! The index keeps several arrays with one entry per event (and hash tables as large).
//! Growing one doubles it: an allocator that serves big blocks from its own heap (mimalloc,
//! which the Python extension uses) copies the whole array into fresh pages, which the
//! kernel first zeroes, all while the index's write lock is held: at a million events the
//! append that crossed a power of two stalled every reader and writer for half a second,
//! and longer as the store grew. A block mapped on its own grows with `mremap`, which moves
//! page table entries instead of bytes. glibc's `malloc` does the same above its mapping
//! threshold; this keeps the small-object allocator's speed for everything else.

use std::alloc::{GlobalAlloc, Layout};

/// Blocks of at least this many bytes are mapped on their own.
pub const MAPPED_FROM: usize = 4 << 20;

/// Hands allocations of at least [`MAPPED_FROM`] bytes to the kernel as private anonymous
/// mappings (grown and shrunk with `mremap`), and every other one to `A`. On systems
/// without `mremap` everything goes to `A`.
pub struct MappedLarge<A>(pub A);

/// Whether a block of `layout` is (or would be) a mapping of its own. Decided by the
/// layout alone: `dealloc` and `realloc` are handed the layout the block was made with.
fn mapped(layout: Layout) -> bool {
    // A mapping is page aligned; no page is smaller than 4 KiB.
    cfg!(target_os = "linux") && layout.size() >= MAPPED_FROM && layout.align() <= 4096
}

// SAFETY: every block is either `A`'s (passed back to `A` with the layout `A` made it
// with) or a mapping of at least `layout.size()` bytes, page aligned, which only
// `dealloc`/`realloc` of that same layout unmap or move.
unsafe impl<A: GlobalAlloc> GlobalAlloc for MappedLarge<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(layout) {
            return map::new(layout.size());
        }
        // SAFETY: the caller's contract for `layout`, passed on.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(layout) {
            return map::new(layout.size()); // fresh anonymous pages read as zeroes
        }
        // SAFETY: as in `alloc`.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(layout) {
            // SAFETY: `ptr` is the mapping `alloc` or `realloc` made for this layout.
            return unsafe { map::free(ptr, layout.size()) };
        }
        // SAFETY: `ptr` is `A`'s block of `layout`.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded to the alignment, fits `isize`.
        let grown = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (mapped(layout), mapped(grown)) {
            // SAFETY: `ptr` is the mapping of `layout.size()` bytes.
            (true, true) => unsafe { map::resize(ptr, layout.size(), new_size) },
            // SAFETY: `ptr` is `A`'s block of `layout`.
            (false, false) => unsafe { self.0.realloc(ptr, layout, new_size) },
            _ => {
                // Across the threshold: a new block, the bytes both hold, the old one freed.
                // SAFETY: `grown` has a non-zero size (the caller's contract) and the two
                // blocks are distinct; `ptr` was made with `layout`.
                unsafe {
                    let moved = self.alloc(grown);
                    if !moved.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod map {
    /// A private anonymous mapping of `size` bytes (rounded up to pages by the kernel);
    /// null when the kernel refuses.
    pub(super) fn new(size: usize) -> *mut u8 {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new anonymous mapping at an address the kernel picks touches nothing else.
        let at = unsafe { libc::mmap(std::ptr::null_mut(), size, prot, flags, -1, 0) };
        if at == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            at.cast()
        }
    }

    /// Unmaps the mapping of `size` bytes at `ptr`.
    ///
    /// # Safety
    /// `ptr` and `size` are those of a live mapping made by [`new`] or [`resize`].
    pub(super) unsafe fn free(ptr: *mut u8, size: usize) {
        // SAFETY: the caller's contract; nothing refers to the block any more.
        unsafe { libc::munmap(ptr.cast(), size) };
    }

    /// The mapping of `old` bytes at `ptr`, grown or shrunk to `new` bytes, moved if it
    /// has to be; null (the old one intact) when the kernel refuses.
    ///
    /// # Safety
    /// As for [`free`].
    pub(super) unsafe fn resize(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: the caller's contract; a move keeps the contents, and the old address
        // is no longer used once the new one is returned.
        let at = unsafe { libc::mremap(ptr.cast(), old, new, libc::MREMAP_MAYMOVE) };
        if at == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            at.cast()
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod map {
    // `mapped` is false everywhere but Linux: none of these is ever called.
    pub(super) fn new(_: usize) -> *mut u8 {
        unreachable!("no mappings of their own without mremap")
    }
    pub(super) unsafe fn free(_: *mut u8, _: usize) {
        unreachable!("no mappings of their own without mremap")
    }
    pub(super) unsafe fn resize(_: *mut u8, _: usize, _: usize) -> *mut u8 {
        unreachable!("no mappings of their own without mremap")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    const A: MappedLarge<System> = MappedLarge(System);

    fn fill(ptr: *mut u8, len: usize) {
        for i in 0..len {
            // SAFETY: `ptr` holds at least `len` bytes in every call below.
            unsafe { ptr.add(i).write((i % 251) as u8) };
        }
    }

    fn holds_fill(ptr: *const u8, len: usize) -> bool {
        // SAFETY: as in `fill`.
        (0..len).all(|i| unsafe { ptr.add(i).read() } == (i % 251) as u8)
    }

    #[test]
    fn a_block_keeps_its_bytes_as_it_grows_and_shrinks_across_the_threshold() {
        let small = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: each pointer is used with the layout it was made or resized with.
        unsafe {
            let p = A.alloc(small);
            fill(p, 1000);
            let big = A.realloc(p, small, MAPPED_FROM + 5);
            assert!(holds_fill(big, 1000));
            fill(big, MAPPED_FROM + 5);
            let big_layout = Layout::from_size_align(MAPPED_FROM + 5, 8).unwrap();
            let bigger = A.realloc(big, big_layout, 8 * MAPPED_FROM);
            assert!(holds_fill(bigger, MAPPED_FROM + 5));
            let bigger_layout = Layout::from_size_align(8 * MAPPED_FROM, 8).unwrap();
            let back = A.realloc(bigger, bigger_layout, 3000);
            assert!(holds_fill(back, 3000));
            A.dealloc(back, Layout::from_size_align(3000, 8).unwrap());
        }
    }

    #[test]
    fn a_large_zeroed_block_reads_as_zeroes() {
        let layout = Layout::from_size_align(3 * MAPPED_FROM, 64).unwrap();
        // SAFETY: freed with the layout it was made with.
        unsafe {
            let p = A.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % 64, 0);
            assert!((0..layout.size()).step_by(4093).all(|i| p.add(i).read() == 0));
            A.dealloc(p, layout);
        }
    }

    #[test]
    fn a_growing_vec_in_the_adaptor_keeps_every_element() {
        // The index's pattern: pushes past several doublings, through `realloc`.
        let layout = Layout::array::<u64>(16).unwrap();
        // SAFETY: every call passes the layout the block has at that moment.
        unsafe {
            let mut cap = 16usize;
            let mut p = A.alloc(layout).cast::<u64>();
            for i in 0..(1usize << 19) {
                if i == cap {
                    let old = Layout::array::<u64>(cap).unwrap();
                    p = A.realloc(p.cast(), old, old.size() * 2).cast();
                    assert!(!p.is_null());
                    cap *= 2;
                }
                p.add(i).write(i as u64 * 3);
            }
            assert!((0..(1usize << 19)).all(|i| p.add(i).read() == i as u64 * 3));
            A.dealloc(p.cast(), Layout::array::<u64>(cap).unwrap());
        }
    }
}
