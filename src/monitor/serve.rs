//! A small HTTP endpoint for Prometheus to scrape (`alerts --watch --listen ADDR`): `GET
//! /metrics` answers the exposition of the last monitoring cycle. HTTP/1.1, one request per
//! connection; requests are read with a size and time limit, so a stray client cannot hold
//! the watch up or grow its memory.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_REQUEST_BYTES: usize = 8 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition the endpoint serves; `None` until the first cycle ended.
#[derive(Clone, Default)]
pub struct Published(Arc<RwLock<Option<String>>>);

impl Published {
    pub fn set(&self, text: String) {
        if let Ok(mut t) = self.0.write() {
            *t = Some(text);
        }
    }

    fn get(&self) -> Option<String> {
        self.0.read().ok().and_then(|t| t.clone())
    }
}

/// Binds `addr` and serves in a background task until the runtime ends. Returns the bound
/// address (port 0 picks one).
pub async fn serve(addr: SocketAddr, published: Published) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let published = published.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &published)).await;
            });
        }
    });
    Ok(bound)
}

async fn answer(mut stream: TcpStream, published: &Published) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST_BYTES {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => match published.get() {
            Some(text) => {
                let body = if method == "HEAD" { "" } else { text.as_str() };
                respond(&mut stream, "200 OK", CONTENT_TYPE, body).await
            }
            None => {
                respond(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    "the first monitoring cycle has not ended yet\n",
                )
                .await
            }
        },
        ("GET" | "HEAD", "/") => {
            respond(
                &mut stream,
                "200 OK",
                "text/plain",
                "deckhand: the metrics are at /metrics\n",
            )
            .await
        }
        ("GET" | "HEAD", _) => {
            respond(&mut stream, "404 Not Found", "text/plain", "not found\n").await
        }
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", "").await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
