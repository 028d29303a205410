use std::time::Duration;

/// An HTTP service on a host's loopback, reachable from here: directly for `local`, through a
/// forwarded unix socket for SSH hosts (the URL's authority is then only cosmetic).
#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    pub client: reqwest::Client,
    pub base_url: String,
}

impl HttpEndpoint {
    pub(crate) fn direct(port: u16, timeout: Duration) -> reqwest::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .no_proxy()
                // Plain HTTP on loopback: no TLS roots to load (the platform verifier reads the
                // system's CA bundle, a few hundred KB per client, and a console keeps one
                // client per host).
                .tls_certs_only([])
                .build()?,
            base_url: format!("http://127.0.0.1:{port}"),
        })
    }

    pub(crate) fn via_unix_socket(
        socket: &std::path::Path,
        port: u16,
        timeout: Duration,
    ) -> reqwest::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .no_proxy()
                .unix_socket(socket)
                .tls_certs_only([])
                .build()?,
            base_url: format!("http://127.0.0.1:{port}"),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}
