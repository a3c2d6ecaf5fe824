//! What happened, in simulated time: every call a client made and how it ended, and every fault.
//! The checker ([`crate::check`]) reads only this; its hash is how determinism is tested.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use memlock_host::ErrorCode;

pub use crate::fake::serve::Loss;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    TryAcquire,
    Acquire,
    Release,
    /// The final acquire after faults stop (liveness).
    Liveness,
    Extend,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    Acquired {
        token: String,
        valid_until: Duration,
        fence: u128,
    },
    Extended {
        valid_until: Duration,
    },
    Busy,
    Released {
        deleted: bool,
    },
    Error {
        /// `None`: the call failed outside the component (a trap or a runtime failure).
        code: Option<ErrorCode>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    Call {
        client: usize,
        op: Op,
        key: String,
        ttl_ms: i64,
        started: Duration,
        ended: Duration,
        outcome: Outcome,
    },
    Fault {
        description: String,
        at: Duration,
    },
    /// The server deleted an item on a request from `peer`; `value` is the owner token it held.
    Delete {
        server: usize,
        peer: String,
        key: Vec<u8>,
        value: Vec<u8>,
        at: Duration,
    },
    /// The server replaced an item on a request from `peer` (an extend's compare-and-set, or a
    /// plain set over it): `old` is the token it held, `new` the one stored.
    Replace {
        server: usize,
        peer: String,
        key: Vec<u8>,
        old: Vec<u8>,
        new: Vec<u8>,
        at: Duration,
    },
    /// The server stored an item on a request from `peer` (an acquire's add, an extend's
    /// compare-and-set, the incarnation item); `lives_until` is the end of its guaranteed life:
    /// stored with `T<n>`, memcached keeps it at least n − 1 seconds (`None`: never expires).
    Store {
        server: usize,
        peer: String,
        key: Vec<u8>,
        value: Vec<u8>,
        lives_until: Option<Duration>,
        at: Duration,
    },
    /// The server lost an item without being asked to: evicted, or gone with its crashed process.
    Drop {
        server: usize,
        key: Vec<u8>,
        value: Vec<u8>,
        at: Duration,
        cause: Loss,
    },
    /// A server process started (after a crash or a reincarnation; the first start of each
    /// server, an hour before the run, is not recorded).
    Restart {
        server: usize,
        at: Duration,
    },
    /// The server applied `peer`'s command and dropped the connection without answering it.
    LostReply {
        server: usize,
        peer: String,
        at: Duration,
    },
    /// A write to the guarded resource with a fencing token, accepted or rejected as stale.
    Write {
        client: usize,
        key: String,
        fence: u128,
        accepted: bool,
        at: Duration,
    },
}

/// Shared by every client of one simulation run (which is single-threaded).
#[derive(Clone, Default)]
pub struct History(Rc<RefCell<Vec<Event>>>);

impl History {
    pub fn record(&self, event: Event) {
        self.0.borrow_mut().push(event);
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.borrow().clone()
    }
}

/// Simulated time now.
pub fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// A fingerprint of a history: equal histories, equal hashes, on every run and machine.
pub fn fingerprint(events: &[Event]) -> u64 {
    // SipHash with fixed zero keys: deterministic, unlike `RandomState`.
    let mut hasher = std::hash::DefaultHasher::new();
    events.hash(&mut hasher);
    hasher.finish()
}
