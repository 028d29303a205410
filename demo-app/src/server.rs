//! Sockets: an accept loop, a thread per connection, keep-alive, graceful shutdown.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::http::{self, ParseError, Response};
use crate::log;

/// How often a connection thread waiting for bytes looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A started request head (or its body) must arrive within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The shutdown request, shared by the signal thread, the accept loop and the connections.
#[derive(Default)]
pub struct Shutdown {
    requested: Mutex<bool>,
    cv: Condvar,
    /// Where the accept loop listens, so that a request can wake its blocking `accept`.
    wake_addr: Mutex<Option<SocketAddr>>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything to stop. Returns true the first time.
    pub fn request(&self) -> bool {
        let first = {
            let mut r = self
                .requested
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let first = !*r;
            *r = true;
            first
        };
        self.cv.notify_all();
        let addr = *self
            .wake_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(addr) = addr {
            // The accept loop sees the flag on its next accept; this connection is that accept.
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        first
    }

    pub fn is_requested(&self) -> bool {
        *self
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `d`; returns early (true) when shutdown is requested.
    pub fn wait_timeout(&self, d: Duration) -> bool {
        let guard = self
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, d, |r| !*r)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }

    fn set_wake_addr(&self, addr: SocketAddr) {
        *self
            .wake_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(addr);
    }
}

/// What became of the connections still open when shutdown was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections still busy when the drain timeout ran out (0: all finished).
    pub abandoned: usize,
    pub took: Duration,
}

/// Serves until shutdown is requested, then stops accepting and waits (up to `drain_timeout`)
/// for the connections in flight to finish their current request.
pub fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: Arc<Shutdown>,
    drain_timeout: Duration,
) -> io::Result<Drained> {
    let local = listener.local_addr()?;
    shutdown.set_wake_addr(wake_addr(local));
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        if shutdown.is_requested() {
            break;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                if shutdown.is_requested() {
                    break; // most likely the wake-up connection itself
                }
                active.fetch_add(1, Ordering::SeqCst);
                let guard = ActiveGuard(Arc::clone(&active));
                let (app, shutdown) = (Arc::clone(&app), Arc::clone(&shutdown));
                let spawned =
                    thread::Builder::new()
                        .name(format!("conn {peer}"))
                        .spawn(move || {
                            let _guard = guard;
                            run_connection(stream, peer, &app, &shutdown);
                        });
                if let Err(e) = spawned {
                    log(&format!("cannot start a thread for {peer}: {e}"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // E.g. out of file descriptors: don't spin.
                log(&format!("accept failed: {e}"));
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
    drop(listener);
    let start = Instant::now();
    while active.load(Ordering::SeqCst) > 0 && start.elapsed() < drain_timeout {
        thread::sleep(Duration::from_millis(10));
    }
    Ok(Drained {
        abandoned: active.load(Ordering::SeqCst),
        took: start.elapsed(),
    })
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run_connection(stream: TcpStream, peer: SocketAddr, app: &App, shutdown: &Shutdown) {
    match handle_connection(stream, peer, app, shutdown) {
        Err(e) if !is_disconnect(&e) => log(&format!("connection from {peer}: {e}")),
        _ => {}
    }
}

/// The address a client can connect to, to reach a listener bound to `local`.
fn wake_addr(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

enum Fill {
    /// New bytes are in the buffer.
    Data,
    /// The peer closed the connection.
    Eof,
    /// Nothing arrived within one poll interval.
    Nothing,
}

fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Fill> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(0) => Ok(Fill::Eof),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(Fill::Data)
        }
        Err(e) if is_timeout(&e) => Ok(Fill::Nothing),
        Err(e) => Err(e),
    }
}

/// Answers `{"error": why}` with `status` and closes the connection.
fn fail(stream: &mut TcpStream, status: u16, why: &str) -> io::Result<()> {
    let body = format!("{{\"error\":{}}}", http::json_string(why));
    Response::json(status, body).write_to(stream, false, false)
}

/// Serves requests on one connection until either side closes it.
fn handle_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    app: &App,
    shutdown: &Shutdown,
) -> io::Result<()> {
    // Accepted sockets are blocking; the read timeout makes reads poll the shutdown flag.
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        // The request head.
        let waiting_since = Instant::now();
        let (req, head_len) = loop {
            match http::parse_head(&buf) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {}
                Err(ParseError::Bad(why)) => return fail(&mut stream, 400, why),
                Err(ParseError::Version) => {
                    return fail(&mut stream, 505, "HTTP/1.0 and HTTP/1.1 only");
                }
                Err(ParseError::Chunked) => {
                    return fail(&mut stream, 501, "Transfer-Encoding not supported");
                }
            }
            if buf.len() > http::MAX_HEAD {
                return fail(&mut stream, 431, "request head too large");
            }
            let idle = buf.iter().all(|b| b.is_ascii_whitespace());
            if idle && (shutdown.is_requested() || waiting_since.elapsed() > IDLE_TIMEOUT) {
                return Ok(()); // idle keep-alive connection: just close it
            }
            if !idle && waiting_since.elapsed() > REQUEST_TIMEOUT {
                return fail(&mut stream, 408, "request timeout");
            }
            if let Fill::Eof = fill(&mut stream, &mut buf)? {
                return Ok(());
            }
        };
        buf.drain(..head_len);

        // The body, read and thrown away.
        let body_len = req.content_length().unwrap_or(0);
        if body_len > http::MAX_BODY {
            return fail(&mut stream, 413, "body too large");
        }
        let body_since = Instant::now();
        while buf.len() < body_len {
            if body_since.elapsed() > REQUEST_TIMEOUT {
                return fail(&mut stream, 408, "request timeout");
            }
            if let Fill::Eof = fill(&mut stream, &mut buf)? {
                return Ok(());
            }
        }
        buf.drain(..body_len);

        let started = Instant::now();
        let resp = app.handle(&req);
        let is_health = req.path == "/health";
        if !is_health && !app.response_delay.is_zero() {
            thread::sleep(app.response_delay);
        }
        // Once shutdown is requested, finish this request and close.
        let keep_alive = req.keep_alive() && !shutdown.is_requested();
        resp.write_to(&mut stream, keep_alive, req.method == "HEAD")?;
        if !is_health {
            log(&format!(
                "{peer} \"{} {}\" {} {}ms",
                req.method,
                req.path,
                resp.status,
                started.elapsed().as_millis()
            ));
        }
        if !keep_alive {
            let _ = stream.shutdown(std::net::Shutdown::Write);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healthcheck;
    use std::io::Write;
    use std::thread::JoinHandle;

    struct Running {
        addr: SocketAddr,
        shutdown: Arc<Shutdown>,
        handle: JoinHandle<io::Result<Drained>>,
    }

    fn start(app: App, drain: Duration) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Arc::new(Shutdown::new());
        let sd = Arc::clone(&shutdown);
        let handle = thread::spawn(move || serve(listener, Arc::new(app), sd, drain));
        Running {
            addr,
            shutdown,
            handle,
        }
    }

    /// Reads one response (head + Content-Length body): (status, head, body).
    fn read_response(s: &mut TcpStream) -> (u16, String, String) {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut byte).unwrap(), 1, "eof in head: {buf:?}");
            buf.push(byte[0]);
        }
        let head = String::from_utf8(buf).unwrap();
        let status = healthcheck::parse_status_line(head.as_bytes()).unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        (status, head, String::from_utf8(body).unwrap())
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    fn app() -> App {
        App::new("t1".into(), true, Duration::ZERO)
    }

    #[test]
    fn keep_alive_then_close() {
        let srv = start(app(), Duration::from_secs(5));
        let mut s = connect(srv.addr);
        s.write_all(b"GET /version HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let (status, head, body) = read_response(&mut s);
        assert_eq!((status, body.as_str()), (200, "{\"version\":\"t1\"}"));
        assert!(head.contains("Connection: keep-alive"));
        // Same connection; two pipelined requests, the second closes.
        s.write_all(b"GET / HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut s).0, 200);
        let (status, head, _) = read_response(&mut s);
        assert_eq!(status, 404);
        assert!(head.contains("Connection: close"));
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        srv.shutdown.request();
        assert_eq!(srv.handle.join().unwrap().unwrap().abandoned, 0);
    }

    #[test]
    fn http10_like_nginx_and_post_body() {
        let srv = start(app(), Duration::from_secs(5));
        let mut s = connect(srv.addr);
        s.write_all(b"POST /admin/unhealthy HTTP/1.0\r\nHost: up\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).unwrap();
        assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
        assert!(all.ends_with("{\"status\":\"unhealthy\"}"));

        assert_eq!(
            healthcheck::check(srv.addr, Duration::from_secs(2)).unwrap(),
            503
        );
        let mut s = connect(srv.addr);
        s.write_all(b"POST /admin/healthy HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut s).0, 200);
        assert_eq!(
            healthcheck::check(srv.addr, Duration::from_secs(2)).unwrap(),
            200
        );
        srv.shutdown.request();
        srv.handle.join().unwrap().unwrap();
    }

    #[test]
    fn bad_request_gets_400_and_close() {
        let srv = start(app(), Duration::from_secs(5));
        let mut s = connect(srv.addr);
        s.write_all(b"HELLO\r\n\r\n").unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).unwrap();
        assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
        srv.shutdown.request();
        srv.handle.join().unwrap().unwrap();
    }

    #[test]
    fn shutdown_finishes_in_flight_requests_and_closes_idle_ones() {
        let srv = start(
            App::new("t1".into(), true, Duration::from_millis(700)),
            Duration::from_secs(5),
        );
        // An idle keep-alive connection must not hold the shutdown up.
        let mut idle = connect(srv.addr);
        idle.write_all(b"GET /health HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut idle).0, 200);

        let addr = srv.addr;
        let slow = thread::spawn(move || {
            let mut s = connect(addr);
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            read_response(&mut s)
        });
        thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        assert!(srv.shutdown.request());
        assert!(!srv.shutdown.request(), "second request is not the first");
        let drained = srv.handle.join().unwrap().unwrap();
        assert_eq!(drained.abandoned, 0);
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "did not wait for the slow request"
        );
        assert!(t0.elapsed() < Duration::from_secs(3));
        let (status, head, body) = slow.join().unwrap();
        assert_eq!((status, body.as_str()), (200, "deckhand-demo t1\n"));
        assert!(head.contains("Connection: close"), "{head}");
        let mut rest = Vec::new();
        assert_eq!(
            idle.read_to_end(&mut rest).unwrap(),
            0,
            "idle connection closed"
        );
        assert!(TcpStream::connect(addr).is_err(), "no longer listening");
    }

    #[test]
    fn drain_is_bounded() {
        let srv = start(
            App::new("t1".into(), true, Duration::from_secs(3)),
            Duration::from_millis(300),
        );
        let addr = srv.addr;
        let _slow = thread::spawn(move || {
            let mut s = connect(addr);
            let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n");
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        });
        thread::sleep(Duration::from_millis(200));
        srv.shutdown.request();
        let drained = srv.handle.join().unwrap().unwrap();
        assert_eq!(drained.abandoned, 1);
        assert!(drained.took < Duration::from_secs(1));
    }

    #[test]
    fn wait_timeout_returns_early_on_request() {
        let sd = Arc::new(Shutdown::new());
        assert!(!sd.wait_timeout(Duration::from_millis(10)));
        let sd2 = Arc::clone(&sd);
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            sd2.request();
        });
        let t0 = Instant::now();
        assert!(sd.wait_timeout(Duration::from_secs(10)));
        assert!(t0.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
    }

    #[test]
    fn wake_addresses() {
        assert_eq!(
            wake_addr("0.0.0.0:3000".parse().unwrap()),
            "127.0.0.1:3000".parse().unwrap()
        );
        assert_eq!(
            wake_addr("[::]:80".parse().unwrap()),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            wake_addr("10.0.0.5:3000".parse().unwrap()),
            "10.0.0.5:3000".parse().unwrap()
        );
    }
}
