//! The wire between deckhand and a remote shell's driver: a command's line, the nonce, and
//! cutting one command's output out of a pipe by its markers.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::transport::host::MAX_COMMAND_OUTPUT;

/// `SEQ BASE64(words) BASE64(stdin)|-` and a newline; the words quoted for `sh`.
#[cfg(test)]
pub(super) fn command_line(seq: u64, program: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    command_lines(seq, program, args, stdin, &mut Scripts::default())
}

/// Scripts shorter than this are sent with each command (a name costs about as much).
const MIN_KEPT_SCRIPT: usize = 64;

/// The `sh -c` scripts a shell's driver holds, by name: a console runs the same few scripts
/// every interval, and each went over the wire again (base64, a third larger) with every
/// command; now it goes once per shell, and each command names it.
#[derive(Default)]
pub(super) struct Scripts(std::collections::HashMap<String, String>);

/// A script's name in the driver: `s_` and 16 hex digits of a fixed hash of its text.
fn script_key(script: &str) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same text has the same name in every process.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    script.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// [`command_line`] for a shell that keeps scripts: the `sh -c` script of a command is sent
/// once, on a definition line (`D NAME BASE64(script)`, which the driver stores and answers
/// nothing to) right before its first command, and named by every command after it (`sh -c
/// "$s_NAME"`: the same words reach `sh` as before).
pub(super) fn command_lines(
    seq: u64,
    program: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
    kept: &mut Scripts,
) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    let mut words = quote(program);
    for (n, a) in args.iter().enumerate() {
        words.push(' ');
        let script = n == 1 && program == "sh" && args[0] == "-c" && a.len() >= MIN_KEPT_SCRIPT;
        if script {
            let key = script_key(a);
            let known = kept.0.get(&key).map(|text| text == a);
            match known {
                Some(true) => {}
                // Another script with this name (a hash collision): sent in full.
                Some(false) => {
                    words.push_str(&quote(a));
                    continue;
                }
                None => {
                    out.push_str(&format!("D {key} {}\n", b64.encode(a)));
                    kept.0.insert(key.clone(), (*a).to_string());
                }
            }
            words.push_str(&format!("\"$s_{key}\""));
        } else {
            words.push_str(&quote(a));
        }
    }
    let input = stdin.map_or_else(|| "-".to_string(), |d| b64.encode(d));
    out.push_str(&format!("{seq} {} {input}\n", b64.encode(words)));
    out
}

/// Single quotes, each `'` inside closed, escaped and reopened: nothing is expanded.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

pub(super) fn nonce() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !random {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        b[..8].copy_from_slice(&h.finish().to_le_bytes());
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("dh{hex}")
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let i = from + hay[from..].iter().position(|&b| b == first)?;
        if hay.len() < i + needle.len() {
            return None;
        }
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// One command's bytes on one pipe: after `NONCE:B:SEQ\n`, up to `\nNONCE:E:SEQ:STATUS\n`.
/// Kept up to [`MAX_COMMAND_OUTPUT`] (then a marker), the rest read and dropped. `read` holds
/// bytes of the pipe read before (with the shell's `ready`).
pub(super) async fn read_frame<R: AsyncRead + Unpin>(
    pipe: &mut R,
    nonce: &str,
    seq: u64,
    read: Vec<u8>,
) -> std::io::Result<(Vec<u8>, i32)> {
    let begin = format!("{nonce}:B:{seq}\n").into_bytes();
    let end = format!("\n{nonce}:E:{seq}:").into_bytes();
    let mut window: Vec<u8> = read;
    let mut chunk = vec![0u8; 64 * 1024];
    let eof = || {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the shell's output ended",
        )
    };
    // Before the begin marker: bytes of no command (dropped).
    loop {
        if let Some(i) = find(&window, &begin) {
            window.drain(..i + begin.len());
            break;
        }
        let keep = window.len().min(begin.len() - 1);
        window.drain(..window.len() - keep);
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Err(eof());
        }
        window.extend_from_slice(&chunk[..n]);
    }
    let mut body = Vec::new();
    let mut cut = false;
    let mut commit = |bytes: &[u8], body: &mut Vec<u8>| {
        let room = MAX_COMMAND_OUTPUT - body.len();
        if bytes.len() > room {
            body.extend_from_slice(&bytes[..room]);
            cut = true;
        } else if !cut {
            body.extend_from_slice(bytes);
        }
    };
    let status = loop {
        if let Some(i) = find(&window, &end) {
            let rest = &window[i + end.len()..];
            if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                let status = String::from_utf8_lossy(&rest[..nl])
                    .trim()
                    .parse()
                    .unwrap_or(-1);
                commit(&window[..i], &mut body);
                break status;
            }
            if rest.len() > 16 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "an unreadable end marker",
                ));
            }
        } else {
            let keep = window.len().min(end.len() - 1);
            let upto = window.len() - keep;
            commit(&window[..upto], &mut body);
            window.drain(..upto);
        }
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Err(eof());
        }
        window.extend_from_slice(&chunk[..n]);
    };
    if cut {
        body.extend_from_slice(b"\n[truncated by deckhand]\n");
    }
    Ok((body, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frame(bytes: &[u8], nonce: &str, seq: u64) -> std::io::Result<(Vec<u8>, i32)> {
        let mut r: &[u8] = bytes;
        read_frame(&mut r, nonce, seq, Vec::new()).await
    }

    #[tokio::test]
    async fn a_frame_is_cut_out_exactly_whatever_it_holds() {
        let n = "dhabc";
        // Stray bytes before, a fake marker with another nonce, one with the right nonce but
        // another sequence number, NUL bytes, no newline at the end of the output.
        let body = b"x\0y\ndhzzz:E:4:0\ndhabc:E:3:0 not quite\n\0tail";
        let mut s = b"junk dhabc:B:3\n".to_vec();
        s.extend_from_slice(b"dhabc:B:4\n");
        s.extend_from_slice(body);
        s.extend_from_slice(b"\ndhabc:E:4:7\n");
        let (out, status) = frame(&s, n, 4).await.expect("frame");
        assert_eq!(out, body);
        assert_eq!(status, 7);
        // Output that ends with a newline keeps it.
        let (out, _) = frame(b"dhabc:B:0\nline\n\ndhabc:E:0:0\n", n, 0)
            .await
            .expect("frame");
        assert_eq!(out, b"line\n");
        // Empty output.
        let (out, status) = frame(b"dhabc:B:0\n\ndhabc:E:0:0\n", n, 0)
            .await
            .expect("frame");
        assert!(out.is_empty());
        assert_eq!(status, 0);
        // Cut off before the end: an error, never a made-up answer.
        assert!(frame(b"dhabc:B:0\npartial", n, 0).await.is_err());
        assert!(
            frame(b"dhabc:B:0\npartial\ndhabc:E:0:", n, 0)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_huge_frame_is_capped_and_its_end_still_found() {
        let n = "dhabc";
        let mut s = b"dhabc:B:1\n".to_vec();
        s.extend(std::iter::repeat_n(b'z', MAX_COMMAND_OUTPUT + 777_777));
        s.extend_from_slice(b"\ndhabc:E:1:0\n");
        let (out, status) = frame(&s, n, 1).await.expect("frame");
        assert_eq!(status, 0);
        assert!(out.ends_with(b"\n[truncated by deckhand]\n"));
        assert_eq!(
            out.len(),
            MAX_COMMAND_OUTPUT + b"\n[truncated by deckhand]\n".len()
        );
    }

    #[test]
    fn words_are_quoted_so_nothing_expands() {
        assert_eq!(quote("it's $HOME `x`"), r"'it'\''s $HOME `x`'");
        let line = command_line(5, "sh", &["-c", "echo \"$1\"", "n", "a b"], None);
        assert!(line.starts_with("5 ") && line.ends_with(" -\n"), "{line}");
        let line = command_line(6, "cat", &[], Some(b""));
        assert_eq!(line.split(' ').count(), 3, "{line}");
    }

    #[test]
    fn a_long_script_goes_once_per_shell_and_is_named_after() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let script = format!("echo \"$1\" # {}", "x".repeat(100));
        let mut kept = Scripts::default();
        let first = command_lines(0, "sh", &["-c", &script, "name", "a b"], None, &mut kept);
        let lines: Vec<&str> = first.lines().collect();
        assert_eq!(lines.len(), 2, "{first}");
        let def: Vec<&str> = lines[0].split(' ').collect();
        assert_eq!(def[0], "D");
        assert!(def[1].len() == 16 && def[1].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(b64.decode(def[2]).expect("b64"), script.as_bytes());
        let words = |line: &str| {
            String::from_utf8(
                b64.decode(line.split(' ').nth(1).expect("words"))
                    .expect("b64"),
            )
            .expect("utf8")
        };
        let named = format!("'sh' '-c' \"$s_{}\" 'name' 'a b'", def[1]);
        assert_eq!(words(lines[1]), named);
        let second = command_lines(1, "sh", &["-c", &script, "name", "a b"], None, &mut kept);
        assert_eq!(second.lines().count(), 1, "not sent again: {second}");
        assert_eq!(words(&second), named);
        assert!(second.len() < script.len(), "{second}");
        // Short scripts, and words that are no `sh -c` script, go as they are.
        let short = command_lines(2, "sh", &["-c", "echo hi"], None, &mut kept);
        assert_eq!(words(&short), "'sh' '-c' 'echo hi'");
        let other = command_lines(3, "cat", &[&script], None, &mut kept);
        assert_eq!(other.lines().count(), 1);
    }
}
