//! The runtime of the published build (`--no-default-features`): no standard library, so none of
//! its panic and formatting machinery ends up in the `.wasm`.
//!
//! - A panic traps (`unreachable`) without formatting its message. The SDK is written not to
//!   panic on any input (`tests/properties.rs`, the hostile-value tables); a trap is a bug.
//! - The allocator is a segregated free list over size classes, four per power of two (so a
//!   block wastes at most a quarter of its size, about an eighth on average): a freed block goes
//!   back to the list of its class and is reused by the next allocation of that class; new
//!   blocks come from a bump pointer over memory grown 256 KiB at a time (a wasm module never
//!   gives memory back, so a coarser step would keep up to a step more than the high-water
//!   mark for good). It never coalesces
//!   or returns memory, so memory stays at the high-water mark of each class, which for an event
//!   queue with fixed bounds (`maxQueueEvents`, `maxQueueBytes`, `maxBatchBytes`) is bounded
//!   too. Every operation is O(1), and the whole allocator is a few hundred bytes of code
//!   instead of dlmalloc's several kilobytes.
//!
//! This is the crate's one piece of global mutable state, as any global allocator is; wasm32
//! without threads runs it on one thread.

/// Blocks are multiples of this, and every block starts at a multiple of it.
pub const GRAIN: usize = 16;
/// How many size classes there are: sizes up to 2^32 on wasm32 (the whole address space).
pub const CLASSES: usize = 4 + 4 * (usize::BITS as usize - 6);

/// The size class of an allocation of `size` bytes: its index and its block size, or None when
/// no block can be that large. Classes are 16, 32, 48 and 64 bytes, then four per power of two
/// (80, 96, 112, 128, 160, 192, ...), every one a multiple of [`GRAIN`].
pub fn size_class(size: usize) -> Option<(usize, usize)> {
    let s = size.max(GRAIN);
    if s <= 64 {
        let block = (s + GRAIN - 1) & !(GRAIN - 1);
        return Some((block / GRAIN - 1, block));
    }
    // s in (2^e, 2^(e+1)], cut in four steps of 2^(e-2).
    let e = (usize::BITS - 1 - (s - 1).leading_zeros()) as usize;
    let step = 1usize << (e - 2);
    let block = s.checked_add(step - 1)? & !(step - 1);
    let index = 4 + (e - 6) * 4 + (block / step - 5);
    (index < CLASSES).then_some((index, block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_fit_and_waste_at_most_a_quarter() {
        let mut last = (0, 0);
        for size in 0..70_000usize {
            let (index, block) = size_class(size).unwrap();
            assert!(block >= size && block % GRAIN == 0, "{size} -> {block}");
            assert!(
                size <= 64 || block - size < block / 4 + 1,
                "{size} -> {block}"
            );
            // Indices grow with the block size, one class per distinct block size.
            assert!(
                index == last.0 && block == last.1
                    || index == last.0 + 1 && block > last.1
                    || size == 0
            );
            last = (index, block);
        }
        assert_eq!(size_class(1), Some((0, 16)));
        assert_eq!(size_class(65), Some((4, 80)));
        assert_eq!(size_class(128), Some((7, 128)));
        assert_eq!(size_class(129), Some((8, 160)));
        assert_eq!(size_class(usize::MAX), None);
        let largest = 1usize << (usize::BITS - 1);
        assert_eq!(size_class(largest).map(|c| c.1), Some(largest));
        assert!(size_class(largest).unwrap().0 < CLASSES);
    }
}

#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
mod runtime {
    use super::{size_class, CLASSES, GRAIN};
    use core::alloc::{GlobalAlloc, Layout};
    use core::arch::wasm32;
    use core::cell::UnsafeCell;
    use core::ptr;

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        wasm32::unreachable()
    }

    const PAGE: usize = 65_536;

    struct State {
        /// Head of the free list of each class, 0 when empty.
        free: [usize; CLASSES],
        /// The next unused byte of grown memory, and the end of grown memory.
        next: usize,
        end: usize,
    }

    struct Bare(UnsafeCell<State>);

    // SAFETY: wasm32-unknown-unknown without the atomics feature has one thread.
    unsafe impl Sync for Bare {}

    #[global_allocator]
    static ALLOCATOR: Bare = Bare(UnsafeCell::new(State {
        free: [0; CLASSES],
        next: 0,
        end: 0,
    }));

    /// The size class of `layout`, or None for sizes or alignments (over [`GRAIN`]) it refuses.
    fn class(layout: &Layout) -> Option<(usize, usize)> {
        if layout.align() > GRAIN {
            return None;
        }
        size_class(layout.size())
    }

    unsafe impl GlobalAlloc for Bare {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let Some((class, size)) = class(&layout) else {
                return ptr::null_mut();
            };
            // SAFETY: one thread, and no allocator call re-enters another.
            let s = unsafe { &mut *self.0.get() };
            let head = s.free[class];
            if head != 0 {
                // SAFETY: `head` is a freed block of this class, whose first word links the list.
                s.free[class] = unsafe { *(head as *const usize) };
                return head as *mut u8;
            }
            // Every block is a multiple of GRAIN, so `next` stays aligned to it once it starts so.
            let start = (s.next + GRAIN - 1) & !(GRAIN - 1);
            let Some(stop) = start.checked_add(size) else {
                return ptr::null_mut();
            };
            if stop > s.end {
                // Grow by what is missing, at least 4 pages (256 KiB) at a time.
                let missing = (stop - s.end.max(start)).div_ceil(PAGE).max(4);
                let old = wasm32::memory_grow(0, missing);
                if old == usize::MAX {
                    return ptr::null_mut();
                }
                let base = old * PAGE;
                if base != s.end {
                    // First growth, or someone else grew memory: start over at the new pages.
                    s.next = base;
                    s.end = base + missing * PAGE;
                    return unsafe { self.alloc(layout) };
                }
                s.end = base + missing * PAGE;
            }
            s.next = stop;
            start as *mut u8
        }

        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            let Some((class, _)) = class(&layout) else {
                return;
            };
            // SAFETY: one thread; `block` came from `alloc` with this layout, so it is a block of
            // `class`, at least GRAIN bytes and aligned for a usize.
            let s = unsafe { &mut *self.0.get() };
            unsafe { *(block as *mut usize) = s.free[class] };
            s.free[class] = block as usize;
        }

        unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: the caller guarantees `layout.align()` with `new_size` is a valid layout.
            let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            if let (Some((old_class, _)), Some((new_class, _))) = (class(&layout), class(&new)) {
                if old_class == new_class {
                    return block;
                }
            }
            let moved = unsafe { self.alloc(new) };
            if !moved.is_null() {
                unsafe {
                    ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
            }
            moved
        }
    }
}
