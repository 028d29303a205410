use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::trips::{Trip, TripKind, Trips};

/// An HTTP service on a host's loopback, reachable from here: directly for `local`, through a
/// forwarded unix socket for SSH hosts (the URL's authority is then only cosmetic).
///
/// One client (and so one set of kept-alive connections) per port, whatever the time limit a
/// caller asks for: the limit is each request's ([`get`](Self::get)). Over ssh every new
/// connection is a new channel, one round trip before its first request, so the read after a
/// release reuses the connection its health wait opened.
#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    client: reqwest::Client,
    timeout: Duration,
    pub base_url: String,
    /// The host's round-trip counters, and whether no request has been made yet (the first
    /// opens the connection: through a forward, a new ssh channel).
    trips: Trips,
    unused: Arc<AtomicBool>,
    forwarded: bool,
}

impl HttpEndpoint {
    pub(crate) fn direct(port: u16, timeout: Duration, trips: Trips) -> reqwest::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .connect_timeout(timeout)
                .no_proxy()
                // Plain HTTP on loopback: no TLS roots to load (the platform verifier reads the
                // system's CA bundle, a few hundred KB per client, and a console keeps one
                // client per host).
                .tls_certs_only([])
                .build()?,
            timeout,
            base_url: format!("http://127.0.0.1:{port}"),
            trips,
            unused: Arc::new(AtomicBool::new(true)),
            forwarded: false,
        })
    }

    pub(crate) fn via_unix_socket(
        socket: &std::path::Path,
        port: u16,
        timeout: Duration,
        trips: Trips,
    ) -> reqwest::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .connect_timeout(timeout)
                .no_proxy()
                .unix_socket(socket)
                .tls_certs_only([])
                .build()?,
            timeout,
            base_url: format!("http://127.0.0.1:{port}"),
            trips,
            unused: Arc::new(AtomicBool::new(true)),
            forwarded: true,
        })
    }

    /// Counts one request to this endpoint in the host's round trips; hold the guard until
    /// the answer is in. The first request of an endpoint is taken to open its connection
    /// (later ones ride reqwest's keep-alive; one closed meanwhile is not seen here).
    pub fn trip(&self) -> Trip {
        let first = self.unused.swap(false, Ordering::Relaxed);
        self.trips.begin(TripKind::Http, first && self.forwarded)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A GET of `path`, bounded by this endpoint's time limit.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).timeout(self.timeout)
    }

    /// The same connections with another time limit.
    pub(crate) fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout,
            ..self.clone()
        }
    }
}
