//! The configured servers: which key goes where, pooled connections, and failure tracking.
//!
//! Policy, from `options.*`:
//! - a command gets `timeout` ms for its round trip; opening a connection gets `reconnect` ms in
//!   total, within which up to `retries` further connect attempts are made;
//! - a pooled connection idle for more than `idle` ms is closed rather than reused, and at most
//!   `pool_size` idle connections are kept;
//! - after `failures` consecutive failed operations a server is marked down and operations on it
//!   fail at once with `SERVER_DOWN` for `retry` ms; the next operation after that tries it again.
//!
//! Only a request that cannot have reached the server is re-sent here (a failed connect, or an
//! idempotent request on a pooled connection the server had closed). Whether a lost *acquire* took
//! effect is the lock's question ([`crate::lock`]), answered with the owner token, never by
//! sending it again blindly.

use crate::prelude::*;

use super::connection::{Connection, TripError};
use super::sharding::Shards;
use super::{Host, SocketError, ms_to_ns};
use crate::config::{Endpoint, Options};
use crate::error::{Code, LockError};
use crate::protocol::{MetaReply, ProtocolError, Request, ServerProcess};
use crate::security::Credential;

/// A plaintext connection that closed or stalled during the handshake may have met a TLS server.
fn tls_hint(endpoint: &Endpoint) -> &'static str {
    if endpoint.security.tls.is_none() {
        " (if the server uses TLS, set connection.protocol=memcacheds)"
    } else {
        ""
    }
}

/// What may have happened to a request whose round trip failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server did not apply it: never sent, or answered with an error.
    NotApplied,
    /// The server may have applied it, and the connection is gone, so it will not apply it later.
    Settled,
    /// The server may have applied it, or may still apply it (a stalled server reading our
    /// request after we gave up).
    Unsettled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripFailure {
    pub error: LockError,
    pub outcome: Outcome,
}

/// A successful round trip, with the server process that answered.
pub struct Answer {
    pub reply: MetaReply,
    pub process: ServerProcess,
}

struct Server<S> {
    endpoint: Endpoint,
    /// The server asked for authentication (`CLIENT_ERROR unauthenticated`): new connections
    /// authenticate first. Learnt, never assumed, so a password is only sent to a server that
    /// asked for one.
    authenticate: bool,
    idle: Vec<Connection<S>>,
    consecutive_failures: u32,
    down_until_ns: Option<u64>,
}

pub struct Servers<S> {
    servers: Vec<Server<S>>,
    shards: Shards,
    options: Options,
}

impl<S> Servers<S> {
    pub fn new(endpoints: Vec<Endpoint>, options: Options) -> Self {
        let shards = Shards::new(options.sharding, &endpoints);
        let servers = endpoints
            .into_iter()
            .map(|endpoint| Server {
                endpoint,
                authenticate: false,
                idle: Vec::new(),
                consecutive_failures: 0,
                down_until_ns: None,
            })
            .collect();
        Servers {
            servers,
            shards,
            options,
        }
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    pub fn endpoint(&self, index: usize) -> &Endpoint {
        &self.servers[index].endpoint
    }

    /// Whether server `index` has a pooled connection fresh enough to use at `now` (a round sends
    /// on those first, and opens new connections after).
    pub fn has_pooled(&self, index: usize, now: u64) -> bool {
        let idle = ms_to_ns(self.options.idle);
        self.servers[index]
            .idle
            .iter()
            .any(|conn| self.options.idle == 0 || now.saturating_sub(conn.last_used_ns) <= idle)
    }

    /// The server that owns `key`.
    pub fn index_for(&self, key: &[u8]) -> usize {
        self.shards.index_for(key)
    }

    /// Closes every pooled connection.
    pub fn close_all(&mut self) {
        for server in &mut self.servers {
            server.idle.clear();
        }
    }

    /// Sends `request` to server `index` and reads its reply. `idempotent` requests are re-sent
    /// once on a fresh connection when a pooled one turns out to be closed.
    ///
    /// With `only_on`, the request is sent only on a connection to that server process;
    /// `Ok(None)` means the server now running is another process, and nothing was sent.
    pub fn round_trip<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        index: usize,
        request: &Request<'_>,
        idempotent: bool,
        only_on: Option<&ServerProcess>,
        now: u64,
    ) -> Result<Option<Answer>, TripFailure> {
        self.servers[index].refuse_if_down(now)?;
        let options = &self.options;
        let server = &mut self.servers[index];
        let result = server.round_trip(host, options, request, idempotent, only_on, now);
        self.note(host, index, result.as_ref().map(|_| ()));
        result
    }

    /// A connection to server `index` for one request of a round that goes to several servers
    /// before any reply is read (quorum mode): pooled, or opened now. Give it back with
    /// [`Self::answered`] or [`Self::failed`].
    pub fn take<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        index: usize,
        now: u64,
    ) -> Result<Connection<S>, TripFailure> {
        self.servers[index].refuse_if_down(now)?;
        let result = self.servers[index].checkout(host, &self.options, now);
        // Only an answer to the request clears the server's failures ([`Self::answered`]).
        if let Err(failure) = &result {
            self.note(host, index, Err(failure));
        }
        result.map(|(conn, _)| conn)
    }

    /// `conn` was taken but not used: back to the pool, nothing learnt about the server.
    pub fn unused(&mut self, index: usize, conn: Connection<S>) {
        self.servers[index].checkin(conn, &self.options);
    }

    /// The server answered on `conn`: it is pooled again and counts as alive.
    pub fn answered<H: Host<Stream = S>>(&mut self, host: &H, index: usize, conn: Connection<S>) {
        self.servers[index].checkin(conn, &self.options);
        self.note(host, index, Ok(()));
    }

    /// A request of a round failed on server `index` (its connection is dropped): the failure,
    /// counted against the server as a round trip's would be.
    pub fn failed<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        index: usize,
        error: TripError,
    ) -> TripFailure {
        let failure = self.servers[index].failure(error, &self.options);
        self.note(host, index, Err(&failure));
        failure
    }

    /// Failure marking after an operation on server `index`.
    fn note<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        index: usize,
        result: Result<(), &TripFailure>,
    ) {
        let options = &self.options;
        let server = &mut self.servers[index];
        match result {
            Ok(()) => {
                server.consecutive_failures = 0;
                server.down_until_ns = None;
            }
            Err(failure) if failure.counts_against_server() => {
                server.consecutive_failures = server.consecutive_failures.saturating_add(1);
                if server.consecutive_failures >= options.failures {
                    server.down_until_ns =
                        Some(host.now_ns().saturating_add(ms_to_ns(options.retry)));
                }
            }
            Err(_) => {}
        }
    }
}

impl TripFailure {
    /// A server that answers, even with an error, is alive; refused credentials or a failed TLS
    /// handshake are the configuration's fault, and marking the server down would hide them.
    fn counts_against_server(&self) -> bool {
        !matches!(
            self.error.code,
            Code::ServerError | Code::ClientError | Code::Unauthorized | Code::TlsFailed
        )
    }
}

impl<S> Server<S> {
    /// `SERVER_DOWN` while the server is marked down.
    fn refuse_if_down(&self, now: u64) -> Result<(), TripFailure> {
        match self.down_until_ns {
            Some(until) if now < until => Err(TripFailure {
                error: LockError::new(
                    Code::ServerDown,
                    format!(
                        "server {} is marked down after {} failures; next try in {} ms",
                        self.endpoint,
                        self.consecutive_failures,
                        (until - now).div_ceil(1_000_000)
                    ),
                ),
                outcome: Outcome::NotApplied,
            }),
            _ => Ok(()),
        }
    }

    fn round_trip<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        options: &Options,
        request: &Request<'_>,
        idempotent: bool,
        only_on: Option<&ServerProcess>,
        mut now: u64,
    ) -> Result<Option<Answer>, TripFailure> {
        let mut resend_allowed = idempotent;
        loop {
            let (mut conn, pooled) = self.checkout(host, options, now)?;
            if !pooled {
                // Connecting took time: read the clock again.
                now = host.now_ns();
            }
            if only_on.is_some_and(|process| conn.process != *process) {
                self.checkin(conn, options);
                return Ok(None);
            }
            let deadline = now.saturating_add(ms_to_ns(options.timeout));
            match conn.meta_round_trip(host, request, options.max_value, now, deadline) {
                Ok(reply) => {
                    let process = conn.process;
                    self.checkin(conn, options);
                    return Ok(Some(Answer { reply, process }));
                }
                Err(TripError::Socket {
                    error: SocketError::Closed | SocketError::Refused,
                    ..
                }) if pooled && resend_allowed => {
                    // The server closed this idle connection before reading our request.
                    resend_allowed = false;
                    now = host.now_ns();
                }
                Err(error) => return Err(self.failure(error, options)),
            }
        }
    }

    fn checkin(&mut self, conn: Connection<S>, options: &Options) {
        if self.idle.len() < options.pool_size {
            self.idle.push(conn);
        }
    }

    /// A pooled connection if a fresh one is idle, else a new one.
    fn checkout<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        options: &Options,
        now: u64,
    ) -> Result<(Connection<S>, bool), TripFailure> {
        while let Some(conn) = self.idle.pop() {
            if options.idle == 0 || now.saturating_sub(conn.last_used_ns) <= ms_to_ns(options.idle)
            {
                return Ok((conn, true));
            }
        }
        let connect_deadline = now.saturating_add(ms_to_ns(options.reconnect));
        let mut attempts_left = options.retries;
        loop {
            match Connection::open(
                host,
                &self.endpoint,
                connect_deadline,
                ms_to_ns(options.timeout),
                self.authenticate,
            ) {
                Ok(conn) => return Ok((conn, false)),
                Err(TripError::Protocol(ProtocolError::Unauthenticated))
                    if !self.authenticate
                        && matches!(
                            self.endpoint.security.credential,
                            Credential::Password { .. }
                        ) =>
                {
                    // The server asks for authentication: connect again, authenticating first.
                    self.authenticate = true;
                }
                Err(error) => {
                    // A failed handshake fails the same way again; only a connection that did
                    // not happen is retried.
                    let can_retry = (matches!(
                        &error,
                        TripError::Socket { sent: false, error } if !matches!(error, SocketError::Tls(_))
                    ) || error == TripError::ClosedAfterTls)
                        && attempts_left > 0
                        && host.now_ns() < connect_deadline;
                    if !can_retry {
                        return Err(self.connect_failure(error, options));
                    }
                    attempts_left -= 1;
                }
            }
        }
    }

    fn connect_failure(&self, error: TripError, options: &Options) -> TripFailure {
        let endpoint = &self.endpoint;
        let code = match &error {
            TripError::ClosedAfterTls => Code::TlsFailed,
            TripError::Protocol(ProtocolError::Unauthenticated) => Code::Unauthorized,
            TripError::Socket {
                error: SocketError::Tls(_),
                ..
            } => Code::TlsFailed,
            _ => Code::ConnectFailed,
        };
        let message = match error {
            TripError::ClosedAfterTls => format!(
                "TLS with memcached at {endpoint} failed: {}",
                super::connection::CLOSED_AFTER_TLS
            ),
            TripError::Protocol(ProtocolError::Unauthenticated) => {
                match &endpoint.security.credential {
                    Credential::Password { username, .. } => format!(
                        "memcached at {endpoint} refused the credentials of user \"{username}\""
                    ),
                    _ => format!(
                        "memcached at {endpoint} requires authentication: set credential.username and credential.password (or credential.store_key)"
                    ),
                }
            }
            TripError::Socket {
                error: SocketError::Tls(why),
                ..
            } => format!("TLS with memcached at {endpoint} failed: {why}"),

            TripError::Socket {
                error: SocketError::TimedOut,
                ..
            } => format!(
                "cannot connect to memcached at {}: no answer within {} ms (options.reconnect / options.timeout){}",
                self.endpoint,
                options.reconnect,
                tls_hint(endpoint)
            ),
            TripError::Socket { error, .. } => {
                format!(
                    "cannot connect to memcached at {}: {error}{}",
                    self.endpoint,
                    tls_hint(endpoint)
                )
            }
            TripError::Protocol(p) => {
                format!("{} does not speak memcached's protocol: {p}", self.endpoint)
            }
        };
        TripFailure {
            error: LockError::new(code, message),
            outcome: Outcome::NotApplied,
        }
    }

    fn failure(&self, error: TripError, options: &Options) -> TripFailure {
        let endpoint = &self.endpoint;
        let (code, message, outcome) = match error {
            TripError::ClosedAfterTls => (
                Code::TlsFailed,
                format!(
                    "TLS with {endpoint} failed: {}",
                    super::connection::CLOSED_AFTER_TLS
                ),
                Outcome::NotApplied,
            ),
            TripError::Socket {
                error: SocketError::TimedOut,
                ..
            } => (
                Code::Timeout,
                format!(
                    "no reply from {endpoint} within {} ms (options.timeout)",
                    options.timeout
                ),
                Outcome::Unsettled,
            ),
            TripError::Socket {
                error: SocketError::Tls(why),
                ..
            } => (
                Code::TlsFailed,
                format!("TLS with {endpoint} failed: {why}"),
                Outcome::Settled,
            ),
            TripError::Socket { error, sent } => (
                Code::ConnectFailed,
                format!("connection to {endpoint} failed: {error}"),
                if sent {
                    Outcome::Settled
                } else {
                    Outcome::NotApplied
                },
            ),
            TripError::Protocol(ProtocolError::ServerError(msg)) => (
                Code::ServerError,
                format!("{endpoint} answered SERVER_ERROR {msg}"),
                Outcome::NotApplied,
            ),
            TripError::Protocol(ProtocolError::Unauthenticated) => (
                Code::Unauthorized,
                format!(
                    "{endpoint} requires authentication again (restarted with new credentials?)"
                ),
                Outcome::NotApplied,
            ),
            TripError::Protocol(ProtocolError::ClientError(msg)) => (
                Code::ClientError,
                format!("{endpoint} rejected the command: {msg}"),
                Outcome::NotApplied,
            ),
            TripError::Protocol(p) => (
                Code::Protocol,
                format!("{endpoint} sent an invalid reply: {p}"),
                Outcome::Unsettled,
            ),
        };
        TripFailure {
            error: LockError::new(code, message),
            outcome,
        }
    }
}
