//! The Docker client of an SSH host: bollard over a hyper client that keeps its connections.
//!
//! bollard's own unix-socket client keeps no idle connection (`pool_max_idle_per_host(0)`), so
//! every request opens a new connection to the forwarded socket. Over SSH each new connection is
//! a new channel, which costs a round trip before the request can even be sent: on a droplet
//! 50 ms away every Docker call cost two round trips instead of one. This client keeps idle
//! connections (hyper's pool), and [`warm`] opens several at once while the version is being
//! negotiated, so the first burst of concurrent reads finds them open.
//!
//! The API version is not waited for either. Until it is known, a read (GET or HEAD), and the
//! creation of an exec instance (which does nothing until started), go out without a version
//! prefix, which Docker serves at its own API version; every answer names that version
//! (`Api-Version`). When it is not newer than bollard's, it is exactly the version a
//! negotiation would have chosen and the answer is kept; otherwise (an engine newer than
//! bollard) the request is sent again with bollard's version. Anything else (a write) waits
//! for the connect's `/version` (and the connections opened beside it, so it finds one idle).
//! So a status's first reads go out with the `/version` request instead of one round trip
//! after it.
//!
//! Every request is counted in the host's [`Trips`], with whether it opened a new connection
//! (over SSH: a new channel, one more round trip).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::{API_DEFAULT_VERSION, BollardRequest, ClientVersion, Docker};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use super::trips::{TripKind, Trips};

/// bollard's request body type (not exported by name).
type Body = http_body_util::Either<
    http_body_util::Full<bytes::Bytes>,
    http_body_util::StreamBody<
        std::pin::Pin<
            Box<
                dyn futures_util::Stream<
                        Item = Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>,
                    > + Send,
            >,
        >,
    >,
>;
type Pooled = Client<SocketConnector, Body>;

/// The API version both sides speak: the engine's, unless it is newer than bollard's.
pub(crate) fn negotiated(server: Option<&str>) -> ClientVersion {
    let parse = |v: &str| {
        let (a, b) = v.split_once('.')?;
        Some(ClientVersion {
            major_version: a.trim().parse().ok()?,
            minor_version: b.trim().parse().ok()?,
        })
    };
    match server.and_then(parse) {
        Some(v) if v < *API_DEFAULT_VERSION => v,
        _ => *API_DEFAULT_VERSION,
    }
}

/// What is known of the engine's API version.
#[derive(Clone, Debug)]
pub(crate) enum Api {
    Pending,
    Known(ClientVersion),
    /// The engine could not be reached or did not answer `/version` (why).
    Failed(String),
}

/// A hyper client to one local unix socket, its connections kept alive between requests.
#[derive(Clone)]
pub(crate) struct PooledSocket {
    client: Arc<Pooled>,
    socket: PathBuf,
    api: Arc<watch::Sender<Api>>,
    trips: Trips,
}

/// Marks a connection's first answer: that request opened the connection (an ssh channel).
#[derive(Clone)]
struct Fresh(Arc<AtomicBool>);

/// Connects to the one forwarded socket (whatever the URI says), marking each new connection.
#[derive(Clone)]
struct SocketConnector(Arc<PathBuf>);

struct SocketStream {
    io: TokioIo<tokio::net::UnixStream>,
    fresh: Fresh,
}

impl Connection for SocketStream {
    fn connected(&self) -> Connected {
        Connected::new().extra(self.fresh.clone())
    }
}

impl hyper::rt::Read for SocketStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SocketStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl tower_service::Service<hyper::Uri> for SocketConnector {
    type Response = SocketStream;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<SocketStream, std::io::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: hyper::Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move {
            let s = tokio::net::UnixStream::connect(path.as_path()).await?;
            Ok(SocketStream {
                io: TokioIo::new(s),
                fresh: Fresh(Arc::new(AtomicBool::new(true))),
            })
        })
    }
}

/// Whether this answer was the first on its connection.
fn opened_connection<B>(resp: &hyper::Response<B>) -> bool {
    resp.extensions()
        .get::<Fresh>()
        .is_some_and(|f| f.0.swap(false, Ordering::Relaxed))
}

/// Requests that may go out before the API version is known: reads, and the creation of an
/// exec instance (it does nothing until started; one made at an unwanted version is left
/// unstarted and made again). Never anything that changes the host.
fn speculative(method: &hyper::Method, path: &str) -> bool {
    if method == hyper::Method::GET || method == hyper::Method::HEAD {
        return true;
    }
    let path = path.split('?').next().unwrap_or(path);
    method == hyper::Method::POST
        && path.starts_with("/containers/")
        && path.ends_with("/exec")
        && path.matches('/').count() == 3
}

/// The body of a request as bytes when it is whole (bollard's `Full`), so it can be sent
/// twice; a stream is given back as it is.
async fn whole_body(body: Body) -> Result<bytes::Bytes, Body> {
    match body {
        http_body_util::Either::Left(full) => match full.collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(never) => match never {},
        },
        stream @ http_body_util::Either::Right(_) => Err(stream),
    }
}

/// `/v1.41/containers/x/json` -> `/containers/x/json` (bollard always adds its prefix).
fn strip_version(pq: &str) -> &str {
    let Some(rest) = pq.strip_prefix("/v") else {
        return pq;
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    if end == 0 || !rest[end..].starts_with('/') {
        return pq;
    }
    &rest[end..]
}

fn io_error(why: impl Into<String>) -> bollard::errors::Error {
    bollard::errors::Error::IOError {
        err: std::io::Error::other(why.into()),
    }
}

impl PooledSocket {
    pub fn new(socket: &Path, trips: Trips) -> Self {
        let mut b = Client::builder(TokioExecutor::new());
        // Docker closes idle connections itself after a while; hyper notices and opens anew.
        b.pool_idle_timeout(std::time::Duration::from_secs(60));
        let (api, _) = watch::channel(Api::Pending);
        Self {
            client: Arc::new(b.build(SocketConnector(Arc::new(socket.to_path_buf())))),
            socket: socket.to_path_buf(),
            api: Arc::new(api),
            trips,
        }
    }

    fn uri(&self, path_and_query: &str) -> hyper::Uri {
        hyperlocal::Uri::new(&self.socket, path_and_query).into()
    }

    /// Says what the API version is (once: the first word stands).
    pub fn settle_api(&self, api: Api) {
        self.api.send_if_modified(|now| {
            if matches!(now, Api::Pending) && !matches!(api, Api::Pending) {
                *now = api;
                true
            } else {
                false
            }
        });
    }

    /// Waits until the API version is known (or known to be unknowable).
    pub async fn api(&self) -> Api {
        let mut rx = self.api.subscribe();
        match rx.wait_for(|a| !matches!(a, Api::Pending)).await {
            Ok(a) => a.clone(),
            Err(_) => Api::Failed("the Docker client was closed".into()),
        }
    }

    /// One request, counted.
    async fn send(&self, req: hyper::Request<Body>) -> Result<hyper::Response<Incoming>, String> {
        let mut trip = self.trips.begin(TripKind::Docker, false);
        let what = format!("{} {}", req.method(), req.uri().path());
        let started = std::time::Instant::now();
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| crate::util::error_chain(&e));
        if let Ok(r) = &resp
            && opened_connection(r)
        {
            trip.opened_channel();
        }
        trip.end();
        tracing::debug!(request = %what, ms = started.elapsed().as_millis() as u64, "docker request");
        resp
    }

    /// A bollard client whose every request goes through this pool, at the negotiated API
    /// version (see the module's description).
    pub fn docker(&self, timeout_secs: u64) -> Result<Docker, bollard::errors::Error> {
        let me = self.clone();
        Docker::connect_with_custom_transport(
            move |req: BollardRequest| {
                let me = me.clone();
                async move { me.versioned(req).await }
            },
            Some("http://docker"),
            timeout_secs,
            API_DEFAULT_VERSION,
        )
    }

    async fn versioned(
        &self,
        req: BollardRequest,
    ) -> Result<hyper::Response<Incoming>, bollard::errors::Error> {
        let (mut parts, body) = req.into_parts();
        let pq = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let rest = strip_version(&pq).to_string();
        let current = self.api.borrow().clone();
        let speculate = matches!(current, Api::Pending) && speculative(&parts.method, &rest);
        let body = if speculate {
            match whole_body(body).await {
                Ok(bytes) => return self.speculate(parts, rest, bytes).await,
                Err(stream) => stream,
            }
        } else {
            body
        };
        let api = match current {
            Api::Known(v) => v,
            _ => match self.api().await {
                Api::Known(v) => v,
                Api::Failed(why) => return Err(io_error(why)),
                Api::Pending => return Err(io_error("the Docker API version is unknown")),
            },
        };
        parts.uri = self.uri(&format!("/v{api}{rest}"));
        self.send(BollardRequest::from_parts(parts, body))
            .await
            .map_err(io_error)
    }

    /// Sends without a version prefix; keeps the answer when the engine served it at the
    /// version we would have negotiated, else sends again with that version.
    async fn speculate(
        &self,
        mut parts: hyper::http::request::Parts,
        rest: String,
        bytes: bytes::Bytes,
    ) -> Result<hyper::Response<Incoming>, bollard::errors::Error> {
        let (method, headers) = (parts.method.clone(), parts.headers.clone());
        parts.uri = self.uri(&rest);
        let resp = self
            .send(BollardRequest::from_parts(
                parts,
                bollard::body_full(bytes.clone()),
            ))
            .await
            .map_err(io_error)?;
        let served = resp
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let v = negotiated(served.as_deref());
        // Served at the engine's own version, and that is the one we speak: done.
        if served.as_deref() == Some(v.to_string().as_str()) {
            return Ok(resp);
        }
        drop(resp);
        let mut again = hyper::Request::builder()
            .method(method)
            .uri(self.uri(&format!("/v{v}{rest}")))
            .body(bollard::body_full(bytes))
            .map_err(|e| io_error(e.to_string()))?;
        *again.headers_mut() = headers;
        self.send(again).await.map_err(io_error)
    }

    /// `GET path` without a version prefix (the daemon's own version), body as bytes.
    pub async fn get(&self, path: &str) -> Result<(u16, Vec<u8>), String> {
        let req = hyper::Request::get(self.uri(path))
            .body(bollard::body_full(bytes::Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = self.send(req).await?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body.to_vec()))
    }

    /// Opens `n` connections at once (each a `/_ping`) and leaves them idle in the pool.
    pub async fn warm(&self, n: usize) {
        let pings = (0..n).map(|_| self.get("/_ping"));
        let _ = futures_util::future::join_all(pings).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_prefix_is_stripped_only_when_it_is_one() {
        assert_eq!(
            strip_version("/v1.41/containers/x/json"),
            "/containers/x/json"
        );
        assert_eq!(strip_version("/v1.53/version"), "/version");
        assert_eq!(strip_version("/version"), "/version");
        assert_eq!(strip_version("/volumes/x"), "/volumes/x");
        assert_eq!(strip_version("/v/x"), "/v/x");
    }

    #[test]
    fn negotiation_keeps_the_older_side() {
        assert_eq!(negotiated(Some("1.41")).to_string(), "1.41");
        assert_eq!(negotiated(Some("9.99")), *API_DEFAULT_VERSION);
        assert_eq!(negotiated(None), *API_DEFAULT_VERSION);
    }
}
