//! One connection to one server: a host stream plus the bytes read but not yet parsed.
//!
//! A round trip writes one request and reads exactly its reply; the opaque echo is checked so a
//! reply can never belong to another request. Any failure consumes the connection (the caller drops
//! it): after a timeout a late reply may still arrive, after garbage nothing can be trusted.

use crate::prelude::*;

use super::{Host, SocketError, remaining_ms};
use crate::protocol::{MetaReply, ProtocolError, Request, ServerIdentity, parse_meta, parse_stats};

/// Bytes asked of the host per receive.
const READ_CHUNK: u32 = 4096;

/// How a round trip failed. `sent` tells whether the request may have reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TripError {
    Socket { error: SocketError, sent: bool },
    Protocol(ProtocolError),
}

pub struct Connection<S> {
    stream: S,
    buffer: Vec<u8>,
    /// The last request's bytes; kept so that a request does not allocate.
    request: Vec<u8>,
    /// The server process this stream reaches, read with `stats` when the connection opened.
    pub identity: ServerIdentity,
    pub last_used_ns: u64,
}

impl<S> Connection<S> {
    /// Opens a stream and learns which server process it reaches.
    pub fn open<H: Host<Stream = S>>(
        host: &H,
        endpoint: &crate::config::Endpoint,
        connect_deadline_ns: u64,
        reply_timeout_ns: u64,
    ) -> Result<Self, TripError> {
        let stream = host
            .connect(
                &endpoint.host,
                endpoint.port,
                remaining_ms(host.now_ns(), connect_deadline_ns),
            )
            .map_err(|error| TripError::Socket { error, sent: false })?;
        let now = host.now_ns();
        let mut conn = Connection {
            stream,
            buffer: Vec::new(),
            request: Vec::with_capacity(128),
            identity: ServerIdentity::default(),
            last_used_ns: now,
        };
        let deadline = now.saturating_add(reply_timeout_ns);
        let mut out = Vec::with_capacity(8);
        Request::Stats.encode(&mut out);
        // The handshake carries no lock command, so its failure never leaves anything behind.
        conn.identity = conn
            .round_trip(host, &out, now, deadline, parse_stats)
            .map_err(|e| match e {
                TripError::Socket { error, .. } => TripError::Socket { error, sent: false },
                other => other,
            })?;
        Ok(conn)
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
        if let Some(expected) = request.opaque()
            && reply.opaque != Some(expected)
        {
            return Err(TripError::Protocol(ProtocolError::OpaqueMismatch {
                expected,
                got: reply.opaque,
            }));
        }
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
        let timed_out = TripError::Socket {
            error: SocketError::TimedOut,
            sent: true,
        };
        if now_ns >= deadline_ns {
            return Err(timed_out);
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
        loop {
            if let Some((reply, used)) = parse(&self.buffer).map_err(TripError::Protocol)? {
                self.buffer.drain(..used);
                return Ok(reply);
            }
            let now = host.now_ns();
            if now >= deadline_ns {
                return Err(timed_out);
            }
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

        fn connect(&self, _: &str, _: u16, _: u32) -> Result<(), SocketError> {
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
            let answer: &[u8] = if request == b"stats\r\n" {
                b"STAT pid 42\r\nSTAT uptime 5\r\nSTAT time 1005\r\nEND\r\n"
            } else {
                b"HD c7 O9\r\n"
            };
            *self.pending.borrow_mut() = answer.to_vec();
            self.next_byte(reply)
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
    }

    #[test]
    fn a_reply_in_pieces_is_reassembled_after_one_exchange() {
        let host = TricklingHost {
            pending: RefCell::new(Vec::new()),
            calls: RefCell::new(Vec::new()),
        };
        let endpoint = Endpoint {
            host: "localhost".into(),
            port: 11211,
        };
        let mut conn =
            Connection::open(&host, &endpoint, 1_000_000_000, 1_000_000_000).expect("handshake");
        assert_eq!(conn.identity.pid, 42);
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
        assert_eq!(reply.status, MetaStatus::Stored);
        assert_eq!(reply.cas, Some(7));
        let calls = host.calls.borrow();
        assert_eq!(calls[0], "exchange");
        assert_eq!(calls.len(), b"HD c7 O9\r\n".len());
        assert!(calls[1..].iter().all(|c| *c == "receive"));
    }
}
