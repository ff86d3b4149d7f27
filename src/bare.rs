//! The runtime of the published build (`--no-default-features`): no standard library, so none of
//! its panic and formatting machinery ends up in the `.wasm`.
//!
//! - A panic traps (`unreachable`) without formatting its message. The SDK is written not to
//!   panic on any input (`tests/properties.rs`, the hostile-value tables); a trap is a bug.
//! - The allocator is a segregated free list over power-of-two size classes: a freed block goes
//!   back to the list of its class and is reused by the next allocation of that class; new
//!   blocks come from a bump pointer over memory grown a few pages at a time. It never coalesces
//!   or returns memory, so memory stays at the high-water mark of each class, which for an event
//!   queue with fixed bounds (`maxQueueBytes`, `maxBatchBytes`) is bounded too. Every operation
//!   is O(1), and the whole allocator is a few hundred bytes of code instead of dlmalloc's
//!   several kilobytes.
//!
//! This is the crate's one piece of global mutable state, as any global allocator is; wasm32
//! without threads runs it on one thread.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    wasm32::unreachable()
}

const PAGE: usize = 65_536;
/// Every block is aligned to its size, up to this; larger alignments are refused (null).
const MAX_ALIGN: usize = 16;
/// The smallest block: room for the free list's next pointer, and one alignment unit.
const MIN_BLOCK: usize = 16;

struct State {
    /// Head of the free list of each class (block size 2^class), 0 when empty.
    free: [usize; usize::BITS as usize],
    /// The next unused byte of grown memory, and the end of grown memory.
    next: usize,
    end: usize,
}

struct Bare(UnsafeCell<State>);

// SAFETY: wasm32-unknown-unknown without the atomics feature has one thread.
unsafe impl Sync for Bare {}

#[global_allocator]
static ALLOCATOR: Bare = Bare(UnsafeCell::new(State {
    free: [0; usize::BITS as usize],
    next: 0,
    end: 0,
}));

/// The size class of `layout`, or None for sizes or alignments the allocator refuses.
fn class(layout: &Layout) -> Option<usize> {
    if layout.align() > MAX_ALIGN {
        return None;
    }
    let size = layout.size().max(MIN_BLOCK).checked_next_power_of_two()?;
    Some(size.trailing_zeros() as usize)
}

unsafe impl GlobalAlloc for Bare {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(&layout) else {
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
        let size = 1usize << class;
        let align = size.min(MAX_ALIGN);
        let start = (s.next + align - 1) & !(align - 1);
        let Some(stop) = start.checked_add(size) else {
            return ptr::null_mut();
        };
        if stop > s.end {
            // Grow by what is missing, at least 16 pages (1 MiB) at a time.
            let missing = (stop - s.end.max(start)).div_ceil(PAGE).max(16);
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
        let Some(class) = class(&layout) else { return };
        // SAFETY: one thread; `block` came from `alloc` with this layout, so it is a block of
        // `class`, at least MIN_BLOCK bytes and aligned for a usize.
        let s = unsafe { &mut *self.0.get() };
        unsafe { *(block as *mut usize) = s.free[class] };
        s.free[class] = block as usize;
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `layout.align()` with `new_size` is a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class(&layout).is_some() && class(&layout) == class(&new) {
            return block;
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
