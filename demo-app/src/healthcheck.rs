//! `deckhand-demo --healthcheck`: the Docker HEALTHCHECK of a `FROM scratch` image (no shell,
//! no curl). GET /health on 127.0.0.1:$PORT; healthy only on 200, within 2 seconds in all.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::config::Config;

pub const TIMEOUT: Duration = Duration::from_secs(2);

pub fn run() -> ExitCode {
    let port = match Config::port_from_env() {
        Ok(p) => p,
        Err(e) => {
            println!("unhealthy: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Docker keeps this output in `docker inspect` (State.Health.Log).
    match check(SocketAddr::from(([127, 0, 0, 1], port)), TIMEOUT) {
        Ok(200) => {
            println!("healthy: HTTP 200 from 127.0.0.1:{port}/health");
            ExitCode::SUCCESS
        }
        Ok(code) => {
            println!("unhealthy: HTTP {code} from 127.0.0.1:{port}/health");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("unhealthy: 127.0.0.1:{port}/health: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The HTTP status of `GET /health` at `addr`, the whole exchange within `timeout`.
pub fn check(addr: SocketAddr, timeout: Duration) -> io::Result<u16> {
    let deadline = Instant::now() + timeout;
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
        } else {
            Ok(d)
        }
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_write_timeout(Some(left()?))?;
    s.write_all(
        b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: deckhand-demo-healthcheck\r\nConnection: close\r\n\r\n",
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.contains(&b'\n') && buf.len() < 1024 {
        s.set_read_timeout(Some(left()?))?;
        let n = match s.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
            r => r?,
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))
}

/// The status code in `HTTP/1.x NNN reason`.
pub fn parse_status_line(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\nX: y\r\n"), Some(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 204\r\n"), Some(204));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
    }

    #[test]
    fn refused_is_an_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(check(port, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t0 = Instant::now();
        let err = check(addr, Duration::from_millis(300)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(t0.elapsed() < Duration::from_secs(2));
        drop(l);
    }
}
