//! The event queue: a deque of fixed-size chunks.
//!
//! A `VecDeque` that doubles as a burst fills it leaves each outgrown buffer behind in the
//! allocator (a wasm module's memory never shrinks, and the SDK's allocator reuses a freed
//! block only for a block of the same size class): about half a megabyte for ten thousand
//! events. Chunks all have one size, so a chunk freed by sending is reused by the next ones.

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::collections::VecDeque;

/// Events per chunk: 256 of 24 bytes, a 6 KiB block.
const CHUNK: usize = 256;

#[derive(Debug)]
pub(super) struct Queue<T> {
    /// Each chunk holds at most `CHUNK` items; none is empty.
    chunks: VecDeque<VecDeque<T>>,
    len: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            chunks: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> Queue<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    pub fn front(&self) -> Option<&T> {
        self.chunks.front().and_then(VecDeque::front)
    }

    pub fn push_back(&mut self, item: T) {
        match self.chunks.back_mut() {
            Some(c) if c.len() < CHUNK => c.push_back(item),
            _ => {
                let mut c = VecDeque::with_capacity(CHUNK);
                c.push_back(item);
                self.chunks.push_back(c);
            }
        }
        self.len += 1;
    }

    pub fn push_front(&mut self, item: T) {
        match self.chunks.front_mut() {
            Some(c) if c.len() < CHUNK => c.push_front(item),
            _ => {
                let mut c = VecDeque::with_capacity(CHUNK);
                c.push_front(item);
                self.chunks.push_front(c);
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let c = self.chunks.front_mut()?;
        let item = c.pop_front();
        if c.is_empty() {
            self.chunks.pop_front();
        }
        if item.is_some() {
            self.len -= 1;
        }
        item
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(VecDeque::iter)
    }

    /// Keeps the items for which `keep` holds, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut kept = Queue::default();
        while let Some(item) = self.pop_front() {
            if keep(&item) {
                kept.push_back(item);
            }
        }
        *self = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_chunks() {
        let mut q = Queue::default();
        for i in 0..1000 {
            q.push_back(i);
        }
        q.push_front(-1);
        assert_eq!(q.len(), 1001);
        assert_eq!(q.front(), Some(&-1));
        assert_eq!(q.pop_front(), Some(-1));
        assert!(q.iter().copied().eq(0..1000));
        q.retain(|i| i % 3 == 0);
        assert!(q.iter().copied().eq((0..1000).filter(|i| i % 3 == 0)));
        assert_eq!(q.len(), 334);
        while q.pop_front().is_some() {}
        assert!(q.is_empty() && q.front().is_none() && q.chunks.is_empty());
        q.push_front(7);
        q.clear();
        assert_eq!((q.len(), q.pop_front()), (0, None));
    }
}
