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
        let mut conn = Connection {
            stream,
            buffer: Vec::new(),
            identity: ServerIdentity {
                pid: 0,
                started_at: 0,
            },
            last_used_ns: host.now_ns(),
        };
        let now = host.now_ns();
        let deadline = now.saturating_add(reply_timeout_ns);
        let mut out = Vec::with_capacity(8);
        Request::Stats.encode(&mut out);
        conn.send(host, &out, now, deadline)
            .map_err(|e| TripError::Socket {
                error: e,
                sent: false,
            })?;
        // The handshake carries no lock command, so its failure never leaves anything behind.
        conn.identity = conn
            .read(host, Some(now), deadline, parse_stats)
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
        let mut out = Vec::with_capacity(128);
        request.encode(&mut out);
        // A failed send may still have delivered some bytes: treat it as sent.
        self.send(host, &out, now_ns, deadline_ns)
            .map_err(|error| TripError::Socket { error, sent: true })?;
        let reply = self.read(host, Some(now_ns), deadline_ns, |buf| {
            parse_meta(buf, max_value)
        })?;
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

    fn send<H: Host<Stream = S>>(
        &self,
        host: &H,
        data: &[u8],
        now_ns: u64,
        deadline_ns: u64,
    ) -> Result<(), SocketError> {
        if now_ns >= deadline_ns {
            return Err(SocketError::TimedOut);
        }
        host.send(&self.stream, data, remaining_ms(now_ns, deadline_ns))
    }

    /// Reads until `parse` sees a whole reply; keeps any bytes after it (there should be none).
    /// `first_now`: a clock reading to use for the first wait (saves a boundary crossing).
    fn read<H, T>(
        &mut self,
        host: &H,
        mut first_now: Option<u64>,
        deadline_ns: u64,
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
            let now = first_now.take().unwrap_or_else(|| host.now_ns());
            if now >= deadline_ns {
                return Err(TripError::Socket {
                    error: SocketError::TimedOut,
                    sent: true,
                });
            }
            let chunk = host
                .receive(&self.stream, READ_CHUNK, remaining_ms(now, deadline_ns))
                .map_err(|error| TripError::Socket { error, sent: true })?;
            if chunk.is_empty() {
                return Err(TripError::Socket {
                    error: SocketError::Closed,
                    sent: true,
                });
            }
            self.buffer.extend_from_slice(&chunk);
        }
    }
}
