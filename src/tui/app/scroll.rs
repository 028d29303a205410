//! A scroll offset that knows its content: it never goes past the last line.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scroll {
    offset: usize,
}

impl Scroll {
    pub fn offset(self) -> usize {
        self.offset
    }

    /// Moves by `delta` lines within content of `len` lines.
    pub fn by(&mut self, delta: isize, len: usize) {
        let max = len.saturating_sub(1);
        self.offset = self.offset.saturating_add_signed(delta).min(max);
    }

    pub fn to(&mut self, offset: usize, len: usize) {
        self.offset = offset.min(len.saturating_sub(1));
    }

    pub fn reset(&mut self) {
        self.offset = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Scroll;

    #[test]
    fn scrolling_stops_at_the_content() {
        let mut s = Scroll::default();
        s.by(-3, 10);
        assert_eq!(s.offset(), 0);
        s.by(100, 10);
        assert_eq!(s.offset(), 9);
        s.to(20, 4);
        assert_eq!(s.offset(), 3);
        s.by(1, 0);
        assert_eq!(s.offset(), 0);
    }
}
