//! Lines of many containers in one time order, in bounded memory.
//!
//! Each container's lines arrive in its own time order. The oldest buffered line may go out when
//! every still-open source has a line buffered (nothing older can come: a k-way merge), when it
//! has waited `window` for the others (following live logs: a quiet container must not hold the
//! rest back), or when the buffer is full (a flood: memory wins over perfect order).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

struct Buffered<T> {
    time: DateTime<Utc>,
    seq: u64,
    arrived: Instant,
    source: usize,
    item: T,
}

impl<T> PartialEq for Buffered<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Buffered<T> {}
impl<T> PartialOrd for Buffered<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Buffered<T> {
    // Reversed: BinaryHeap is a max-heap and the oldest line goes first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

pub struct Merger<T> {
    heap: BinaryHeap<Buffered<T>>,
    buffered: Vec<usize>,
    open: Vec<bool>,
    seq: u64,
    capacity: usize,
    window: Option<Duration>,
}

impl<T> Merger<T> {
    /// `window`: how long a line waits for older ones from quiet sources (`None`: until every
    /// source has spoken or ended).
    pub fn new(sources: usize, capacity: usize, window: Option<Duration>) -> Self {
        Self {
            heap: BinaryHeap::new(),
            buffered: vec![0; sources],
            open: vec![true; sources],
            seq: 0,
            capacity: capacity.max(1),
            window,
        }
    }

    pub fn push(&mut self, source: usize, time: DateTime<Utc>, item: T, now: Instant) {
        self.seq += 1;
        if let Some(n) = self.buffered.get_mut(source) {
            *n += 1;
        }
        self.heap.push(Buffered {
            time,
            seq: self.seq,
            arrived: now,
            source,
            item,
        });
    }

    /// A source that joins later (following a new live color); returns its index.
    pub fn add_source(&mut self) -> usize {
        self.buffered.push(0);
        self.open.push(true);
        self.buffered.len() - 1
    }

    pub fn close(&mut self, source: usize) {
        if let Some(o) = self.open.get_mut(source) {
            *o = false;
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Every source ended and everything went out.
    pub fn done(&self) -> bool {
        self.heap.is_empty() && self.open.iter().all(|o| !o)
    }

    /// The buffer is full: the caller should stop reading until a line went out.
    pub fn full(&self) -> bool {
        self.heap.len() >= self.capacity
    }

    /// The next line that may go out now, if any.
    pub fn pop_ready(&mut self, now: Instant) -> Option<T> {
        let oldest = self.heap.peek()?;
        let everyone_spoke = self
            .open
            .iter()
            .zip(&self.buffered)
            .all(|(open, n)| !open || *n > 0);
        let waited = self
            .window
            .is_some_and(|w| now.duration_since(oldest.arrived) >= w);
        if everyone_spoke || waited || self.heap.len() >= self.capacity {
            let b = self.heap.pop()?;
            if let Some(n) = self.buffered.get_mut(b.source) {
                *n -= 1;
            }
            return Some(b.item);
        }
        None
    }

    /// When the oldest line's wait is over (for a timer), if a window is set.
    pub fn deadline(&self) -> Option<Instant> {
        let w = self.window?;
        self.heap.peek().map(|b| b.arrived + w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(ms)
    }

    #[test]
    fn a_k_way_merge_waits_for_every_open_source() {
        let now = Instant::now();
        let mut m = Merger::new(2, 100, None);
        m.push(0, t(10), "a10", now);
        m.push(0, t(30), "a30", now);
        assert_eq!(
            m.pop_ready(now),
            None,
            "source 1 may still send something older"
        );
        m.push(1, t(20), "b20", now);
        assert_eq!(m.pop_ready(now), Some("a10"));
        assert_eq!(m.pop_ready(now), Some("b20"));
        assert_eq!(m.pop_ready(now), None, "source 1 has nothing buffered");
        m.close(1);
        assert_eq!(m.pop_ready(now), Some("a30"));
        m.close(0);
        assert!(m.done());
    }

    #[test]
    fn equal_times_keep_arrival_order() {
        let now = Instant::now();
        let mut m = Merger::new(1, 100, None);
        for s in ["x", "y", "z"] {
            m.push(0, t(5), s, now);
        }
        let out: Vec<_> = std::iter::from_fn(|| m.pop_ready(now)).collect();
        assert_eq!(out, ["x", "y", "z"]);
    }

    #[test]
    fn a_quiet_source_holds_lines_back_only_for_the_window() {
        let now = Instant::now();
        let mut m = Merger::new(2, 100, Some(Duration::from_millis(200)));
        m.push(0, t(1), "a", now);
        assert_eq!(m.pop_ready(now), None);
        assert_eq!(m.deadline(), Some(now + Duration::from_millis(200)));
        assert_eq!(m.pop_ready(now + Duration::from_millis(200)), Some("a"));
    }

    #[test]
    fn a_flood_is_bounded_by_the_capacity() {
        let now = Instant::now();
        let mut m = Merger::new(2, 3, None);
        for i in 0..4 {
            m.push(0, t(i), i, now);
        }
        assert!(m.full());
        assert_eq!(m.pop_ready(now), Some(0), "over capacity: the oldest goes");
        assert_eq!(m.pop_ready(now), Some(1), "at capacity: the oldest goes");
        assert_eq!(
            m.pop_ready(now),
            None,
            "below capacity: waiting for source 1"
        );
    }
}
