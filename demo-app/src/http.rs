//! Just enough HTTP/1.x: parse a request head from a buffer, write a response.

use std::io::{self, Write};

/// Largest request head accepted (request line + headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted (read and discarded).
pub const MAX_BODY: usize = 1024 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Option<String>,
    pub version: Version,
    /// Header names as sent; look them up with [`Request::header`].
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Malformed: answer 400 and close.
    Bad(&'static str),
    /// An HTTP version other than 1.0/1.1: answer 505 and close.
    Version,
    /// `Transfer-Encoding` on a request: answer 501 and close.
    Chunked,
}

impl Request {
    /// The first header of that name (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Persistent connection? HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection_has("close"),
            Version::Http10 => self.connection_has("keep-alive") && !self.connection_has("close"),
        }
    }

    /// The body length announced by `Content-Length` (0 when absent).
    pub fn content_length(&self) -> Result<usize, ParseError> {
        let mut found: Option<usize> = None;
        for (_, v) in self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            let v = v.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Bad("invalid Content-Length"));
            }
            let n: usize = v
                .parse()
                .map_err(|_| ParseError::Bad("Content-Length too large"))?;
            if found.is_some_and(|f| f != n) {
                return Err(ParseError::Bad("conflicting Content-Length headers"));
            }
            found = Some(n);
        }
        Ok(found.unwrap_or(0))
    }
}

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete, read more.
/// `Ok(Some((request, n)))`: the head took the first `n` bytes (the body, if any, follows).
/// Lines may end in CRLF or a bare LF; empty lines before the request line are skipped.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, ParseError> {
    let mut pos = 0;
    let mut lines: Vec<&[u8]> = Vec::new();
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let mut line = &buf[pos..pos + nl];
        pos += nl + 1;
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.is_empty() {
            if lines.is_empty() {
                continue; // RFC 9112 2.2: ignore empty lines before the request line
            }
            break;
        }
        if lines.len() > MAX_HEADERS {
            return Err(ParseError::Bad("too many headers"));
        }
        lines.push(line);
    }

    let request_line = std::str::from_utf8(lines[0]).map_err(|_| ParseError::Bad("not UTF-8"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ParseError::Bad("malformed method"));
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        v if v.starts_with("HTTP/") => return Err(ParseError::Version),
        _ => return Err(ParseError::Bad("malformed request line")),
    };
    if !target.starts_with('/') && target != "*" {
        return Err(ParseError::Bad("request target must be a path"));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };

    let mut headers = Vec::with_capacity(lines.len() - 1);
    for raw in &lines[1..] {
        if raw[0] == b' ' || raw[0] == b'\t' {
            return Err(ParseError::Bad("obsolete header line folding"));
        }
        let line = std::str::from_utf8(raw).map_err(|_| ParseError::Bad("header not UTF-8"))?;
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::Bad("header without a colon"));
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(ParseError::Bad("malformed header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let req = Request {
        method: method.to_string(),
        path,
        query,
        version,
        headers,
    };
    if req.header("transfer-encoding").is_some() {
        return Err(ParseError::Chunked);
    }
    req.content_length()?;
    Ok(Some((req, pos)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/json", body)
    }

    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire. `keep_alive` picks the `Connection` header; `head_only` leaves
    /// the body out (HEAD) but keeps its `Content-Length`.
    pub fn to_bytes(&self, keep_alive: bool, head_only: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.body.len());
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        for (k, v) in &self.headers {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }

    pub fn write_to(
        &self,
        w: &mut impl Write,
        keep_alive: bool,
        head_only: bool,
    ) -> io::Result<()> {
        w.write_all(&self.to_bytes(keep_alive, head_only))?;
        w.flush()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// `s` as a JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (Request, usize) {
        parse_head(s.as_bytes()).unwrap().expect("complete")
    }

    #[test]
    fn simple_get() {
        let raw = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        let (r, n) = parse(raw);
        assert_eq!(n, raw.len());
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/health");
        assert_eq!(r.query, None);
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.header("HOST"), Some("x"));
        assert!(r.keep_alive());
        assert_eq!(r.content_length(), Ok(0));
    }

    #[test]
    fn query_and_header_whitespace() {
        let (r, _) = parse("GET /version?x=1&y HTTP/1.1\r\nX-Thing:   spaced out  \r\n\r\n");
        assert_eq!(r.path, "/version");
        assert_eq!(r.query.as_deref(), Some("x=1&y"));
        assert_eq!(r.header("x-thing"), Some("spaced out"));
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        for partial in [
            "",
            "GET / HTTP/1.1",
            "GET / HTTP/1.1\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n\r",
        ] {
            assert_eq!(parse_head(partial.as_bytes()), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn bare_lf_and_leading_empty_lines() {
        let raw = "\r\n\nGET / HTTP/1.0\nHost: x\n\n";
        let (r, n) = parse(raw);
        assert_eq!(n, raw.len());
        assert_eq!((r.path.as_str(), r.version), ("/", Version::Http10));
    }

    #[test]
    fn pipelined_requests_consume_only_the_first_head() {
        let raw =
            "POST /admin/unhealthy HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\n\r\n";
        let (r, n) = parse(raw);
        assert_eq!(r.content_length(), Ok(2));
        assert_eq!(&raw[n..n + 2], "hi");
        let (r2, _) = parse(&raw[n + 2..]);
        assert_eq!(r2.path, "/");
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |s: &str| parse(s).0.keep_alive();
        assert!(ka("GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nconnection: Upgrade, Close\r\n\r\n"));
        // nginx's default for upstreams: HTTP/1.0 + Connection: close.
        assert!(!ka("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn malformed_requests() {
        let bad = |s: &str| parse_head(s.as_bytes());
        assert!(matches!(bad("GET /\r\n\r\n"), Err(ParseError::Bad(_))));
        assert!(matches!(
            bad("GET  / HTTP/1.1\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert!(matches!(
            bad("GET / HTTP/1.1 x\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert!(matches!(
            bad("G=T / HTTP/1.1\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert!(matches!(
            bad("GET health HTTP/1.1\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert!(matches!(
            bad("GET / FTP/1.1\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert_eq!(bad("GET / HTTP/2.0\r\n\r\n"), Err(ParseError::Version));
        assert!(matches!(
            bad("GET / HTTP/1.1\r\nNoColon\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert!(matches!(
            bad("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert!(matches!(
            bad("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert!(matches!(
            bad("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert!(matches!(
            bad("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        assert_eq!(
            bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(ParseError::Chunked)
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(bad(&many), Err(ParseError::Bad(_))));
    }

    #[test]
    fn response_bytes() {
        let r = Response::json(503, "{}").with_header("X-Demo-Version", "a000001");
        let s = String::from_utf8(r.to_bytes(false, false)).unwrap();
        assert_eq!(
            s,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
             Connection: close\r\nCache-Control: no-store\r\nX-Demo-Version: a000001\r\n\r\n{}"
        );
        let head = String::from_utf8(Response::text(200, "hello").to_bytes(true, true)).unwrap();
        assert!(head.contains("Content-Length: 5\r\n"));
        assert!(head.contains("Connection: keep-alive\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a000001"), "\"a000001\"");
        assert_eq!(
            json_string("a\"b\\c\nd\u{1}é"),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
    }
}
