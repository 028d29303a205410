//! Round-trip accounting: what one [`Host`](super::Host) asked of the far side, and how many of
//! those waits came one after another.
//!
//! Every remote operation is counted by kind: a command over ssh, a Docker API request, an HTTP
//! request through a forward, and every new ssh channel one of them had to open first. Each
//! operation also has a *weight*, the round trips it costs at least: one for a request on an
//! open channel, one more when it opened its channel (a Docker request on a new pooled
//! connection, the first HTTP request of an endpoint, every ssh command).
//!
//! `sequential` is the longest chain of operations in which each started only after the one
//! before it had ended, summing their weights. Over a link of RTT `r`, a piece of work whose
//! chain is `n` cannot take less than `n · r` beyond its time on loopback, and when each
//! operation costs about its weight it takes about that: it is the figure a slower link
//! multiplies. Independent operations sent together add to the counts but not to the chain.
//! It is computed online: an operation that starts takes the deepest chain among the
//! operations already finished, and adds its weight when it ends.
//!
//! A [`TripCount`] is a snapshot; the difference of two snapshots is the cost of the work in
//! between (a release step, a connect, a status read), provided no other work of the host ran
//! meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// What kind of remote operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripKind {
    /// A command run on the host over ssh (`Host::exec*`).
    Command,
    /// A Docker API request through the forwarded socket.
    Docker,
    /// An HTTP request to a port on the host's loopback, through a forward.
    Http,
}

/// A snapshot of a host's counters (or the difference of two).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TripCount {
    pub commands: u64,
    pub docker: u64,
    pub http: u64,
    /// New ssh channels opened (each ssh command opens one; pooled Docker connections and HTTP
    /// connections open one each the first time).
    pub channels: u64,
    /// Round trips one after another (see the module's description).
    pub sequential: u64,
}

impl TripCount {
    /// Operations of every kind.
    pub fn operations(&self) -> u64 {
        self.commands + self.docker + self.http
    }

    /// What happened since `earlier` (a snapshot of the same host).
    #[must_use]
    pub fn since(&self, earlier: &TripCount) -> TripCount {
        TripCount {
            commands: self.commands.saturating_sub(earlier.commands),
            docker: self.docker.saturating_sub(earlier.docker),
            http: self.http.saturating_sub(earlier.http),
            channels: self.channels.saturating_sub(earlier.channels),
            sequential: self.sequential.saturating_sub(earlier.sequential),
        }
    }
}

impl std::fmt::Display for TripCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sequential round trips; {} commands, {} docker, {} http, {} new channels",
            self.sequential, self.commands, self.docker, self.http, self.channels
        )
    }
}

#[derive(Default)]
struct Counters {
    commands: AtomicU64,
    docker: AtomicU64,
    http: AtomicU64,
    channels: AtomicU64,
    /// The deepest chain among finished operations.
    depth: AtomicU64,
}

/// A host's counters; cheap to clone (shared), so the Docker transport can hold one.
#[derive(Clone, Default)]
pub struct Trips(Arc<Counters>);

impl std::fmt::Debug for Trips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trips({})", self.snapshot())
    }
}

impl Trips {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts an operation that starts now; it ends when the returned guard is dropped (or
    /// [`Trip::end`] is called). `opens_channel`: it opens a new ssh channel first, known now
    /// (an ssh command) or said later with [`Trip::opened_channel`].
    pub fn begin(&self, kind: TripKind, opens_channel: bool) -> Trip {
        let c = &self.0;
        match kind {
            TripKind::Command => &c.commands,
            TripKind::Docker => &c.docker,
            TripKind::Http => &c.http,
        }
        .fetch_add(1, Ordering::Relaxed);
        let mut trip = Trip {
            trips: self.clone(),
            base: c.depth.load(Ordering::Acquire),
            weight: 1,
            ended: false,
        };
        if opens_channel {
            trip.opened_channel();
        }
        trip
    }

    pub fn snapshot(&self) -> TripCount {
        let c = &self.0;
        TripCount {
            commands: c.commands.load(Ordering::Relaxed),
            docker: c.docker.load(Ordering::Relaxed),
            http: c.http.load(Ordering::Relaxed),
            channels: c.channels.load(Ordering::Relaxed),
            sequential: c.depth.load(Ordering::Acquire),
        }
    }
}

/// One operation in flight.
pub struct Trip {
    trips: Trips,
    /// The chain it follows: the deepest finished when it started.
    base: u64,
    weight: u64,
    ended: bool,
}

impl Trip {
    /// It had to open a new ssh channel (one more round trip before its own).
    pub fn opened_channel(&mut self) {
        self.trips.0.channels.fetch_add(1, Ordering::Relaxed);
        self.weight += 1;
    }

    /// It waited for one more answer before its own (a remote shell that said it cannot run
    /// commands, before the command went through a plain exec).
    pub fn waited(&mut self) {
        self.weight += 1;
    }

    /// It waited first for something that stood at chain `depth` only then (a remote shell's
    /// channel that the connect had begun to open): its chain starts there, if that is deeper.
    pub fn follows(&mut self, depth: u64) {
        self.base = self.base.max(depth);
    }

    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if !self.ended {
            self.ended = true;
            self.trips
                .0
                .depth
                .fetch_max(self.base + self.weight, Ordering::AcqRel);
        }
    }
}

impl Drop for Trip {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_operations_add_to_the_counts_not_to_the_chain() {
        let t = Trips::new();
        let a = t.begin(TripKind::Docker, false);
        let b = t.begin(TripKind::Docker, true);
        let c = t.begin(TripKind::Command, true);
        drop((a, b, c));
        let s = t.snapshot();
        assert_eq!((s.docker, s.commands, s.channels), (2, 1, 2));
        // The deepest of the three: a channel and a request.
        assert_eq!(s.sequential, 2);
    }

    #[test]
    fn an_operation_that_waits_for_another_extends_the_chain() {
        let t = Trips::new();
        t.begin(TripKind::Docker, false).end();
        let long = t.begin(TripKind::Command, true);
        // Starts after the first ended, while the command is still running.
        let next = t.begin(TripKind::Http, true);
        next.end();
        assert_eq!(t.snapshot().sequential, 3);
        long.end();
        assert_eq!(t.snapshot().sequential, 3);
        let later = t.snapshot();
        t.begin(TripKind::Docker, false).end();
        assert_eq!(t.snapshot().since(&later).sequential, 1);
        assert_eq!(t.snapshot().operations(), 4);
    }

    #[test]
    fn an_operation_that_waited_for_a_channel_follows_it() {
        let t = Trips::new();
        // A channel that began opening at chain 0 stands at 1; a command that started at 0
        // and waited for it ends at 2, one that started deeper is not moved back.
        let mut first = t.begin(TripKind::Command, false);
        first.follows(1);
        first.end();
        assert_eq!(t.snapshot().sequential, 2);
        let mut later = t.begin(TripKind::Command, false);
        later.follows(1);
        later.end();
        assert_eq!(t.snapshot().sequential, 3);
        assert_eq!(t.snapshot().channels, 0, "it opened no channel itself");
    }
}
