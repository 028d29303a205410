//! The Docker client of an SSH host: bollard over a hyper client that keeps its connections.
//!
//! bollard's own unix-socket client keeps no idle connection (`pool_max_idle_per_host(0)`), so
//! every request opens a new connection to the forwarded socket. Over SSH each new connection is
//! a new channel, which costs a round trip before the request can even be sent: on a droplet
//! 50 ms away every Docker call cost two round trips instead of one. This client keeps idle
//! connections (hyper's pool), and [`warm`] opens several at once while the version is being
//! negotiated, so the first burst of concurrent reads finds them open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::{BollardRequest, ClientVersion, Docker};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

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
type Pooled = Client<hyperlocal::UnixConnector, Body>;

/// A hyper client to one local unix socket, its connections kept alive between requests.
#[derive(Clone)]
pub(crate) struct PooledSocket {
    client: Arc<Pooled>,
    socket: PathBuf,
}

impl PooledSocket {
    pub fn new(socket: &Path) -> Self {
        let mut b = Client::builder(TokioExecutor::new());
        // Docker closes idle connections itself after a while; hyper notices and opens anew.
        b.pool_idle_timeout(std::time::Duration::from_secs(60));
        Self {
            client: Arc::new(b.build(hyperlocal::UnixConnector)),
            socket: socket.to_path_buf(),
        }
    }

    fn uri(&self, path_and_query: &str) -> hyper::Uri {
        hyperlocal::Uri::new(&self.socket, path_and_query).into()
    }

    /// A bollard client whose every request goes through this pool.
    pub fn docker(
        &self,
        timeout_secs: u64,
        version: &ClientVersion,
    ) -> Result<Docker, bollard::errors::Error> {
        let me = self.clone();
        Docker::connect_with_custom_transport(
            move |req: BollardRequest| {
                let me = me.clone();
                async move {
                    let (mut parts, body) = req.into_parts();
                    let pq = parts
                        .uri
                        .path_and_query()
                        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
                    parts.uri = me.uri(&pq);
                    me.client
                        .request(BollardRequest::from_parts(parts, body))
                        .await
                        .map_err(bollard::errors::Error::from)
                }
            },
            Some("http://docker"),
            timeout_secs,
            version,
        )
    }

    /// `GET path` without a version prefix (the daemon's own version), body as bytes.
    pub async fn get(&self, path: &str) -> Result<(u16, Vec<u8>), String> {
        let req = hyper::Request::get(self.uri(path))
            .body(bollard::body_full(bytes::Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| crate::util::error_chain(&e))?;
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
