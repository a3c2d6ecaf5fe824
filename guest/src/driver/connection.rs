//! One connection to one server: a host stream plus the bytes read but not yet parsed.
//!
//! Opening a connection learns which memcached process it reaches ([`ServerProcess`]): `stats`
//! gives pid and start second, which a restart can repeat (pid 1 in a container, restarted within
//! the second), and the process's incarnation item gives a random number that a restart cannot
//! repeat, because the restart erased it. `stats` and the incarnation lookup go in one write: one
//! round trip. Only the first client to reach a new process also stores the item (a second round
//! trip; if another client stored it first, a third reads theirs).
//!
//! A server that requires authentication (`-Y`) answers the handshake `CLIENT_ERROR
//! unauthenticated`; the caller ([`super::servers`]) then opens a new connection that
//! authenticates first: the `set` carrying the credentials goes in the same write as the
//! handshake, so it costs no extra round trip.
//!
//! A round trip writes one request and reads exactly its reply; the opaque echo is checked so a
//! reply can never belong to another request. Any failure consumes the connection (the caller drops
//! it): after a timeout a late reply may still arrive, after garbage nothing can be trusted.

use crate::prelude::*;

use super::{Host, SocketError, remaining_ms};
use crate::key::LockKey;
use crate::protocol::request::encode_authentication;
use crate::protocol::{
    MetaReply, MetaStatus, ProtocolError, Request, ServerProcess, parse_meta, parse_stats,
    parse_stored,
};
use crate::security::Credential;

/// The incarnation item's key. A NUL at both ends keeps it apart from any key a person would
/// choose (keys are stored as the caller's raw bytes).
pub const INCARNATION_KEY: &[u8] = b"\0memlock:incarnation\0";
const _: () = assert!(INCARNATION_KEY.len() > crate::key::RESERVED_PREFIX.len());
/// Longest incarnation value read (ours are 16 hex digits).
const MAX_INCARNATION_VALUE: usize = 256;

/// How far memcached's `uptime` can run ahead of the process's true age, in seconds: 2 from its
/// start set in the past, 1 from whole-second ticks.
pub const UPTIME_AHEAD_S: u64 = 3;

/// Why a TLS connection failed when the server hung up at its first request.
pub const CLOSED_AFTER_TLS: &str = "the server closed the connection right after the TLS handshake (a server that verifies clients needs credential.ssl_crt_file and credential.ssl_key_file, with a certificate its CA signed)";

/// Bytes asked of the host per receive.
const READ_CHUNK: u32 = 4096;

/// How a round trip failed. `sent` tells whether the request may have reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TripError {
    Socket {
        error: SocketError,
        sent: bool,
    },
    Protocol(ProtocolError),
    /// The TLS handshake passed and the server hung up at the first request: with TLS 1.3 that
    /// is how a server that verifies clients refuses a certificate (its alert may arrive first,
    /// or only the reset). A restarting server does the same, so it is retried like a failed
    /// connect, and reported as `TLS_FAILED` if it persists.
    ClosedAfterTls,
}

pub struct Connection<S> {
    stream: S,
    buffer: Vec<u8>,
    /// The last request's bytes; kept so that a request does not allocate.
    request: Vec<u8>,
    /// The server process this stream reaches, read by the handshake (`stats` + the incarnation
    /// item) when the connection opened.
    pub process: ServerProcess,
    pub last_used_ns: u64,
    /// The process's uptime (`stats`, whole seconds; it runs up to [`UPTIME_AHEAD_S`] ahead of
    /// the process's true age) and the host's clock when its reply had arrived: how long the
    /// process has run, for quorum mode.
    uptime_s: u64,
    opened_ns: u64,
}

impl<S> Connection<S> {
    /// Opens a stream (TLS if configured), authenticates first when `authenticate` (with the
    /// endpoint's password credential), and learns which server process it reaches.
    pub fn open<H: Host<Stream = S>>(
        host: &H,
        endpoint: &crate::config::Endpoint,
        connect_deadline_ns: u64,
        reply_timeout_ns: u64,
        authenticate: bool,
    ) -> Result<Self, TripError> {
        let stream = host
            .connect(
                &endpoint.host,
                endpoint.port,
                remaining_ms(host.now_ns(), connect_deadline_ns),
                endpoint.security.tls.as_ref(),
            )
            .map_err(|error| TripError::Socket { error, sent: false })?;
        let credential = match &endpoint.security.credential {
            Credential::Password { username, password } if authenticate => {
                Some((username.as_str(), password.expose()))
            }
            _ => None,
        };
        let now = host.now_ns();
        let mut conn = Connection {
            stream,
            buffer: Vec::new(),
            request: Vec::with_capacity(128),
            process: ServerProcess::default(),
            last_used_ns: now,
            uptime_s: 0,
            opened_ns: now,
        };
        let deadline = now.saturating_add(reply_timeout_ns);
        // The handshake carries no lock command, so its failure never leaves a lock behind.
        let tls = endpoint.security.tls.is_some();
        conn.process = conn
            .handshake(host, credential, now, deadline)
            .map_err(|e| match e {
                TripError::Socket {
                    error: SocketError::Closed | SocketError::Refused,
                    ..
                } if tls => TripError::ClosedAfterTls,
                TripError::Socket { error, .. } => TripError::Socket { error, sent: false },
                other => other,
            })?;
        Ok(conn)
    }

    /// `stats` and the incarnation lookup in one round trip, after the authentication `set` when
    /// `credential` is given; the incarnation stored first if this is the process's first client.
    fn handshake<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        credential: Option<(&str, &str)>,
        now: u64,
        deadline: u64,
    ) -> Result<ServerProcess, TripError> {
        let key = LockKey::internal(INCARNATION_KEY, crate::key::MEMCACHED_MAX_KEY)
            .map_err(|e| TripError::Protocol(ProtocolError::Malformed(e.message)))?;
        let mut out = Vec::with_capacity(64);
        if let Some((username, password)) = credential {
            encode_authentication(username, password, &mut out);
        }
        let authenticating = credential.is_some();
        Request::Stats.encode(&mut out);
        Request::Get {
            key: &key,
            opaque: 0,
        }
        .encode(&mut out);
        let trip = self.round_trip(host, &out, now, deadline, |buf| {
            let stored = if authenticating {
                match parse_stored(buf)? {
                    Some(used) => used,
                    None => return Ok(None),
                }
            } else {
                0
            };
            let Some((process, uptime, used)) = parse_stats(&buf[stored..])? else {
                return Ok(None);
            };
            let used = stored + used;
            Ok(parse_meta(&buf[used..], MAX_INCARNATION_VALUE)?
                .map(|(reply, more)| ((process, uptime, reply), used + more)))
        });
        // The credentials travelled in `out`: it is not kept.
        out.fill(0);
        let (mut process, uptime, mut lookup) = trip?;
        // The uptime was read when the server answered, at the latest now: counting from now
        // can only make the process seem younger than it is.
        self.uptime_s = uptime;
        self.opened_ns = host.now_ns();
        for attempt in 0..3 {
            if lookup.opaque != Some(0) {
                return Err(TripError::Protocol(ProtocolError::OpaqueMismatch {
                    expected: 0,
                    got: lookup.opaque,
                }));
            }
            match (lookup.status, lookup.value) {
                (MetaStatus::Value, Some(value)) => {
                    process.incarnation = super::sharding::fnv1a(&value);
                    return Ok(process);
                }
                (MetaStatus::Miss, _) if attempt < 2 => {
                    // A new process: claim it with a random incarnation. If another client was
                    // first (NS), read theirs.
                    let value = hex16(host.random_u64());
                    let claimed = self.request(
                        host,
                        &Request::Claim {
                            key: &key,
                            value: &value,
                            opaque: 0,
                        },
                        deadline,
                    )?;
                    if claimed.opaque != Some(0) {
                        return Err(TripError::Protocol(ProtocolError::OpaqueMismatch {
                            expected: 0,
                            got: claimed.opaque,
                        }));
                    }
                    if claimed.status == MetaStatus::Done {
                        process.incarnation = super::sharding::fnv1a(&value);
                        return Ok(process);
                    }
                    lookup = self.request(
                        host,
                        &Request::Get {
                            key: &key,
                            opaque: 0,
                        },
                        deadline,
                    )?;
                }
                (status, _) => {
                    return Err(TripError::Protocol(ProtocolError::Malformed(format!(
                        "unexpected reply {status:?} to the incarnation lookup"
                    ))));
                }
            }
        }
        Err(TripError::Protocol(ProtocolError::Malformed(
            "the incarnation item keeps vanishing".into(),
        )))
    }

    /// One handshake request and its meta reply.
    fn request<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        request: &Request<'_>,
        deadline: u64,
    ) -> Result<MetaReply, TripError> {
        let mut out = Vec::with_capacity(64);
        request.encode(&mut out);
        self.round_trip(host, &out, host.now_ns(), deadline, |buf| {
            parse_meta(buf, MAX_INCARNATION_VALUE)
        })
    }

    /// How long the server process has run at `now_ns`, at least. memcached 1.6 sets its start
    /// two seconds in the past (a fresh process reports `uptime 2`) and counts whole seconds, so
    /// [`UPTIME_AHEAD_S`] come off its uptime; the time since the handshake is read on this
    /// host's clock, which may run fast by the drift allowance (`drift_ppm`), so it counts at
    /// the slowest true rate the allowance admits.
    pub fn process_age_ns(&self, now_ns: u64, drift_ppm: u32) -> u64 {
        let since = u128::from(now_ns.saturating_sub(self.opened_ns));
        let since = since * u128::from(1_000_000u32.saturating_sub(drift_ppm)) / 1_000_000;
        self.uptime_s
            .saturating_sub(UPTIME_AHEAD_S)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    /// Writes `request` before `deadline_ns` without reading its reply ([`Self::read_meta`] reads
    /// it): several servers' requests go out before any reply is awaited.
    pub fn send_meta<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        request: &Request<'_>,
        now_ns: u64,
        deadline_ns: u64,
    ) -> Result<(), TripError> {
        let mut out = core::mem::take(&mut self.request);
        out.clear();
        request.encode(&mut out);
        let sent = host
            .send(&self.stream, &out, remaining_ms(now_ns, deadline_ns))
            .map_err(|error| TripError::Socket { error, sent: true });
        self.request = out;
        sent
    }

    /// Reads the meta reply to the request [`Self::send_meta`] wrote, before `deadline_ns`, and
    /// checks its opaque. It reads at least once even past the deadline: replies of a round are
    /// read one server after another, and one that arrived while a slower server was awaited
    /// must not be missed.
    pub fn read_meta<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        opaque: Option<u32>,
        max_value: usize,
        deadline_ns: u64,
    ) -> Result<MetaReply, TripError> {
        let reply = self.read_reply(host, deadline_ns, false, |buf| parse_meta(buf, max_value))?;
        check_opaque(opaque, &reply)?;
        self.last_used_ns = host.now_ns();
        Ok(reply)
    }

    /// Sends `request` and reads its meta reply, all before `deadline_ns`. `now_ns` is the
    /// caller's reading of the clock: each clock reading is a call across the component boundary.
    pub fn meta_round_trip<H: Host<Stream = S>>(
        &mut self,
        host: &H,
        request: &Request<'_>,
        max_value: usize,
        now_ns: u64,
        deadline_ns: u64,
    ) -> Result<MetaReply, TripError> {
        let mut out = core::mem::take(&mut self.request);
        out.clear();
        request.encode(&mut out);
        let reply = self.round_trip(host, &out, now_ns, deadline_ns, |buf| {
            parse_meta(buf, max_value)
        });
        self.request = out;
        let reply = reply?;
        check_opaque(request.opaque(), &reply)?;
        self.last_used_ns = now_ns;
        Ok(reply)
    }

    /// Sends `request` and reads until `parse` sees a whole reply, all before `deadline_ns`;
    /// keeps any bytes after the reply (there should be none). The request and the first read are
    /// one host call ([`Host::exchange`]); further reads happen only for a reply that arrives in
    /// pieces. Any socket failure counts as sent: a failed write may still have delivered bytes.
    fn round_trip<H, T>(
        &mut self,
        host: &H,
        request: &[u8],
        now_ns: u64,
        deadline_ns: u64,
        parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, ProtocolError>,
    ) -> Result<T, TripError>
    where
        H: Host<Stream = S>,
    {
        if now_ns >= deadline_ns {
            return Err(TripError::Socket {
                error: SocketError::TimedOut,
                sent: true,
            });
        }
        let before = self.buffer.len();
        host.exchange(
            &self.stream,
            request,
            READ_CHUNK,
            remaining_ms(now_ns, deadline_ns),
            &mut self.buffer,
        )
        .map_err(|error| TripError::Socket { error, sent: true })?;
        self.check_progress(before)?;
        self.read_reply(host, deadline_ns, true, parse)
    }

    /// Reads until `parse` sees a whole reply in the buffer, before `deadline_ns`; keeps any bytes
    /// after it. With `read_once` false, it reads once even past the deadline (a reply that
    /// arrived while another server of a round was awaited must not be missed).
    fn read_reply<H, T>(
        &mut self,
        host: &H,
        deadline_ns: u64,
        mut read_once: bool,
        parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, ProtocolError>,
    ) -> Result<T, TripError>
    where
        H: Host<Stream = S>,
    {
        loop {
            if let Some((reply, used)) = parse(&self.buffer).map_err(TripError::Protocol)? {
                self.buffer.drain(..used);
                return Ok(reply);
            }
            let now = host.now_ns();
            if now >= deadline_ns && read_once {
                return Err(TripError::Socket {
                    error: SocketError::TimedOut,
                    sent: true,
                });
            }
            read_once = true;
            let before = self.buffer.len();
            host.receive(
                &self.stream,
                READ_CHUNK,
                remaining_ms(now, deadline_ns),
                &mut self.buffer,
            )
            .map_err(|error| TripError::Socket { error, sent: true })?;
            self.check_progress(before)?;
        }
    }

    /// A read that appended nothing is a host that broke its contract, taken as a closed stream.
    fn check_progress(&self, before: usize) -> Result<(), TripError> {
        if self.buffer.len() > before {
            return Ok(());
        }
        Err(TripError::Socket {
            error: SocketError::Closed,
            sent: true,
        })
    }
}

/// A reply whose opaque is not the request's belongs to another request: the stream is out of step.
fn check_opaque(expected: Option<u32>, reply: &MetaReply) -> Result<(), TripError> {
    match expected {
        Some(expected) if reply.opaque != Some(expected) => {
            Err(TripError::Protocol(ProtocolError::OpaqueMismatch {
                expected,
                got: reply.opaque,
            }))
        }
        _ => Ok(()),
    }
}

/// 16 lowercase hex digits.
fn hex16(n: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use core::cell::RefCell;

    use super::*;
    use crate::config::Endpoint;
    use crate::driver::ConnectionParams;
    use crate::key::LockKey;
    use crate::protocol::MetaStatus;

    /// A host whose server answers `stats` and then `HD c7 O<opaque>`, handing every reply out
    /// one byte per call, and which records the calls it gets.
    struct TricklingHost {
        pending: RefCell<Vec<u8>>,
        calls: RefCell<Vec<&'static str>>,
    }

    impl TricklingHost {
        fn next_byte(&self, reply: &mut Vec<u8>) -> Result<(), SocketError> {
            let mut pending = self.pending.borrow_mut();
            if pending.is_empty() {
                return Err(SocketError::TimedOut);
            }
            reply.push(pending.remove(0));
            Ok(())
        }
    }

    impl Host for TricklingHost {
        type Stream = ();

        fn connect(
            &self,
            _: &str,
            _: u16,
            _: u32,
            _: Option<&crate::security::Tls>,
        ) -> Result<(), SocketError> {
            Ok(())
        }

        fn exchange(
            &self,
            _: &(),
            request: &[u8],
            _: u32,
            _: u32,
            reply: &mut Vec<u8>,
        ) -> Result<(), SocketError> {
            self.calls.borrow_mut().push("exchange");
            let answer: &[u8] = if request.starts_with(b"stats\r\nmg ") {
                b"STAT pid 42\r\nSTAT uptime 5\r\nSTAT time 1005\r\nEND\r\nVA 16 O0\r\n0123456789abcdef\r\n"
            } else {
                b"HD c7 O9\r\n"
            };
            *self.pending.borrow_mut() = answer.to_vec();
            self.next_byte(reply)
        }

        fn send(&self, _: &(), _: &[u8], _: u32) -> Result<(), SocketError> {
            self.calls.borrow_mut().push("send");
            Ok(())
        }

        fn receive(&self, _: &(), _: u32, _: u32, reply: &mut Vec<u8>) -> Result<(), SocketError> {
            self.calls.borrow_mut().push("receive");
            self.next_byte(reply)
        }

        fn now_ns(&self) -> u64 {
            0
        }

        fn sleep_ns(&self, _: u64) -> bool {
            true
        }

        fn random_u64(&self) -> u64 {
            4
        }

        fn resolve_all(&self, _: Option<&str>, _: &str) -> Result<Vec<ConnectionParams>, String> {
            Ok(Vec::new())
        }

        fn lookup_credential(
            &self,
            _: Option<&str>,
            _: &str,
        ) -> Result<Option<ConnectionParams>, String> {
            Ok(None)
        }
    }

    #[test]
    fn a_reply_in_pieces_is_reassembled_after_one_exchange() {
        let host = TricklingHost {
            pending: RefCell::new(Vec::new()),
            calls: RefCell::new(Vec::new()),
        };
        let endpoint = Endpoint::plain("localhost", 11211);
        let mut conn = Connection::open(&host, &endpoint, 1_000_000_000, 1_000_000_000, false)
            .expect("handshake");
        assert_eq!(conn.process.pid, 42);
        assert_eq!(
            conn.process.incarnation,
            crate::driver::sharding::fnv1a(b"0123456789abcdef")
        );
        host.calls.borrow_mut().clear();

        let key = LockKey::new(b"k", 250).expect("key");
        let request = Request::Add {
            key: &key,
            value: b"tok",
            ttl_secs: 2,
            opaque: 9,
        };
        let reply = conn
            .meta_round_trip(&host, &request, 64, 0, 1_000_000_000)
            .expect("reply");
        assert_eq!(reply.status, MetaStatus::Done);
        assert_eq!(reply.cas, Some(7));
        let calls = host.calls.borrow();
        assert_eq!(calls[0], "exchange");
        assert_eq!(calls.len(), b"HD c7 O9\r\n".len());
        assert!(calls[1..].iter().all(|c| *c == "receive"));
    }
}
