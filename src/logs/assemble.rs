//! Docker log frames back into lines, with a cap on a line's length.
//!
//! With `timestamps=1` every frame starts with Docker's RFC 3339 timestamp and a space. Docker
//! splits a long line into 16 KiB partial messages, each with its own timestamp and only the
//! last ending in `\n`; they are joined here, and whatever goes past the cap is counted, not
//! kept, so a host that writes a gigabyte without a newline costs `max_bytes` of memory.

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One whole line as Docker stored it, cut at the cap.
#[derive(Debug, Clone, PartialEq)]
pub struct RawLine {
    /// When Docker received the line's first byte.
    pub time: DateTime<Utc>,
    pub stream: Stream,
    pub text: String,
    /// Bytes past the cap that were dropped.
    pub cut_bytes: usize,
}

#[derive(Debug)]
struct Partial {
    time: DateTime<Utc>,
    bytes: Vec<u8>,
    cut: usize,
}

/// Per-container state: an unfinished line per stream.
#[derive(Debug)]
pub struct Assembler {
    max_bytes: usize,
    pending: [Option<Partial>; 2],
    /// The last timestamp seen, for a frame that carries none.
    last_time: DateTime<Utc>,
}

impl Assembler {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            pending: [None, None],
            last_time: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// Feeds one frame; finished lines are appended to `out`.
    pub fn push(&mut self, stream: Stream, frame: &[u8], out: &mut Vec<RawLine>) {
        let (time, mut rest) = split_timestamp(frame);
        let time = time.unwrap_or(self.last_time);
        self.last_time = time;
        loop {
            let (segment, ended) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            let max = self.max_bytes;
            let slot = &mut self.pending[stream.index()];
            let partial = slot.get_or_insert_with(|| Partial {
                time,
                bytes: Vec::new(),
                cut: 0,
            });
            let room = max.saturating_sub(partial.bytes.len());
            let keep = segment.len().min(room);
            partial.bytes.extend_from_slice(&segment[..keep]);
            partial.cut += segment.len() - keep;
            if !ended {
                if partial.bytes.is_empty() && partial.cut == 0 {
                    *slot = None;
                }
                return;
            }
            if let Some(p) = slot.take() {
                out.push(finish(p, stream));
            }
            rest = &rest[segment.len() + 1..];
            if rest.is_empty() {
                return;
            }
        }
    }

    /// The stream ended: unfinished lines are lines too.
    pub fn finish(&mut self, out: &mut Vec<RawLine>) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(p) = self.pending[stream.index()].take() {
                out.push(finish(p, stream));
            }
        }
    }
}

fn finish(p: Partial, stream: Stream) -> RawLine {
    let mut bytes = p.bytes;
    let mut cut = p.cut;
    // A cut in the middle of a UTF-8 character leaves no half character behind.
    if cut > 0 {
        while let Err(e) = std::str::from_utf8(&bytes) {
            if e.error_len().is_some() {
                break;
            }
            let valid = e.valid_up_to();
            cut += bytes.len() - valid;
            bytes.truncate(valid);
        }
    }
    RawLine {
        time: p.time,
        stream,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        cut_bytes: cut,
    }
}

/// `2026-12-01T08:11:12.968520678Z rest` → (time, rest).
fn split_timestamp(frame: &[u8]) -> (Option<DateTime<Utc>>, &[u8]) {
    let Some(space) = frame.iter().take(40).position(|b| *b == b' ') else {
        return (None, frame);
    };
    let parsed = std::str::from_utf8(&frame[..space])
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    match parsed {
        Some(t) => (Some(t.with_timezone(&Utc)), &frame[space + 1..]),
        None => (None, frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(frames: &[(Stream, &[u8])], max: usize) -> Vec<RawLine> {
        let mut a = Assembler::new(max);
        let mut out = Vec::new();
        for (s, f) in frames {
            a.push(*s, f, &mut out);
        }
        a.finish(&mut out);
        out
    }

    #[test]
    fn timestamps_are_split_off_and_lines_end_at_newlines() {
        let out = lines(
            &[
                (Stream::Stdout, b"2026-12-01T08:11:12.968636930Z hello\n"),
                (Stream::Stderr, b"2026-12-01T08:11:13.000000000Z oops\r\n"),
            ],
            100,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].text, "hello");
        assert_eq!(out[0].stream, Stream::Stdout);
        assert_eq!(
            out[0]
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2026-12-01T08:11:12.968636930Z"
        );
        assert_eq!(
            out[1].text, "oops\r",
            "a carriage return is the printer's business"
        );
    }

    #[test]
    fn partial_messages_join_and_a_long_line_is_cut_at_the_cap() {
        let out = lines(
            &[
                (Stream::Stdout, b"2026-12-01T08:00:00.000000001Z aaaaaaaa"),
                (Stream::Stdout, b"2026-12-01T08:00:00.000000001Z bbbbbbbb"),
                (Stream::Stderr, b"2026-12-01T08:00:00.500000000Z between\n"),
                (Stream::Stdout, b"2026-12-01T08:00:00.000000001Z cc\n"),
            ],
            10,
        );
        assert_eq!(out[0].text, "between");
        assert_eq!(out[1].text, "aaaaaaaabb");
        assert_eq!(out[1].cut_bytes, 8);
        assert_eq!(out[1].stream, Stream::Stdout);
    }

    #[test]
    fn a_cut_never_leaves_half_a_character() {
        let out = lines(&[(Stream::Stdout, "t é\n".as_bytes())], 2);
        // No timestamp: the frame is all text; "t " fits, "é" (2 bytes) does not.
        assert_eq!(out[0].text, "t ");
        assert_eq!(out[0].cut_bytes, 2);
    }

    #[test]
    fn several_lines_in_one_frame_and_an_unterminated_last_line() {
        let out = lines(
            &[(Stream::Stdout, b"2026-12-01T08:00:00Z one\ntwo\nthree")],
            100,
        );
        let texts: Vec<&str> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "three"]);
    }
}
