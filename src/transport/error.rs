use thiserror::Error;

/// Why a host could not be used. Every message names the host and, where there is one, the fix.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error(
        "{host}: the host key is unknown or has changed, so deckhand refused to connect (strict host key checking).\n  ssh said: {detail}\n  The host presents: {presented}\n  Fix: compare that fingerprint with the one the droplet's console shows (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the droplet); only if they match, trust it: `ssh-keyscan {keyscan_args} >> {known_hosts}`{remove_hint}"
    )]
    HostKey {
        host: String,
        detail: String,
        presented: String,
        keyscan_args: String,
        known_hosts: String,
        remove_hint: String,
    },

    #[error("{host}: ssh connection failed: {detail}")]
    Connect { host: String, detail: String },

    #[error("{host}: no answer within {secs}s ({what})")]
    Timeout {
        host: String,
        secs: u64,
        what: &'static str,
    },

    #[error(
        "{host}: the Docker engine at {socket} does not answer: {detail}\n  Fix: check that dockerd runs on the host and that the ssh user may use the socket (member of the `docker` group)"
    )]
    Docker {
        host: String,
        socket: String,
        detail: String,
    },

    #[error(
        "{host}: ssh refused to forward {what}: {detail}\n  Fix: the server must allow forwarding (sshd_config: AllowTcpForwarding yes, AllowStreamLocalForwarding yes)"
    )]
    Forward {
        host: String,
        what: String,
        detail: String,
    },

    #[error(
        "{host}: `{program}` did not finish within {after} (timed out and abandoned; the host or its disk may hang; set DECKHAND_COMMAND_TIMEOUT to allow longer)"
    )]
    CommandTimeout {
        host: String,
        program: String,
        after: String,
    },

    #[error("{host}: running `{program}` failed: {detail}")]
    Exec {
        host: String,
        program: String,
        detail: String,
    },

    #[error("{host}: {detail}")]
    Other { host: String, detail: String },

    /// The host's ssh master is gone (network cut, host rebooted, master killed): reconnect.
    #[error("{host}: the connection to the host was lost: {source}")]
    ConnectionLost {
        host: String,
        #[source]
        source: openssh::Error,
    },
}

impl TransportError {
    pub fn host(&self) -> &str {
        match self {
            Self::HostKey { host, .. }
            | Self::Connect { host, .. }
            | Self::Timeout { host, .. }
            | Self::Docker { host, .. }
            | Self::Forward { host, .. }
            | Self::Exec { host, .. }
            | Self::CommandTimeout { host, .. }
            | Self::Other { host, .. }
            | Self::ConnectionLost { host, .. } => host,
        }
    }

    /// A connection that worked is gone, so a new one may work (callers reconnect on this
    /// rather than reading the message).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::ConnectionLost { .. })
    }
}
