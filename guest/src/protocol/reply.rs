//! Parsing replies from a byte buffer, incrementally and without trusting the server.
//!
//! Each parser looks at the front of the buffer and returns `Ok(None)` when the reply is not complete
//! yet (read more and call again), `Ok(Some((reply, consumed)))` when it is, and an error for
//! anything memcached would not send: a line longer than [`MAX_LINE`], a value longer than the
//! caller's bound, a missing `\r\n`, an unknown status, a malformed number. A connection that
//! produced an error is never reused: after garbage, nothing later on the stream can be trusted.

use crate::prelude::*;

use core::fmt;

/// The longest reply line accepted, `\r\n` included. Meta reply lines of the lock are < 100 bytes;
/// `stats` lines are < 80.
pub const MAX_LINE: usize = 1024;
/// The most `STAT` lines accepted in one `stats` reply (memcached 1.6 sends about 90).
pub const MAX_STAT_LINES: usize = 512;

/// Why a reply could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    LineTooLong,
    ValueTooLarge {
        len: usize,
        max: usize,
    },
    Malformed(String),
    /// `SERVER_ERROR <msg>`: the server failed the command (out of memory, ...).
    ServerError(String),
    /// `CLIENT_ERROR <msg>` or `ERROR`: the server rejected the command.
    ClientError(String),
    /// `CLIENT_ERROR unauthenticated` or `CLIENT_ERROR authentication failure`: the server
    /// requires authentication (started with `-Y`) and this connection has not passed it, or the
    /// credentials were wrong.
    Unauthenticated,
    /// The reply's opaque is not the request's: the stream is out of step.
    OpaqueMismatch {
        expected: u32,
        got: Option<u32>,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::LineTooLong => write!(f, "reply line longer than {MAX_LINE} bytes"),
            ProtocolError::ValueTooLarge { len, max } => {
                write!(
                    f,
                    "reply value of {len} bytes, more than the {max} expected"
                )
            }
            ProtocolError::Malformed(what) => write!(f, "malformed reply: {what}"),
            ProtocolError::ServerError(msg) => write!(f, "SERVER_ERROR {msg}"),
            ProtocolError::ClientError(msg) => write!(f, "CLIENT_ERROR {msg}"),
            ProtocolError::Unauthenticated => f.write_str("CLIENT_ERROR unauthenticated"),
            ProtocolError::OpaqueMismatch { expected, got } => {
                write!(f, "reply for request O{expected} carried opaque {got:?}")
            }
        }
    }
}

/// The status code of a meta reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStatus {
    /// `HD`: the command did what it asked (stored, deleted), no value.
    Done,
    /// `VA`: success with a value.
    Value,
    /// `NS`: not stored (add on an existing key).
    NotStored,
    /// `EX`: CAS mismatch.
    Exists,
    /// `NF`: not found (delete, set with CAS).
    NotFound,
    /// `EN`: miss (get).
    Miss,
    /// `MN`: end of a pipeline.
    NoOp,
}

/// One meta reply with the flags the lock reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaReply {
    pub status: MetaStatus,
    pub cas: Option<u64>,
    pub opaque: Option<u32>,
    pub value: Option<Vec<u8>>,
}

/// Who answered: the `pid` and start time of the memcached process, from `stats`, and the
/// process's incarnation: FNV-1a of a random value the first client to reach the process stores
/// in it (`driver::connection`). Two processes can share pid and start second (memcached as pid 1 in a
/// container, restarted within a second); they cannot share the incarnation, which the restart
/// erased with every other item. Carried in a lease as its server process; all zero means unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerProcess {
    pub pid: u64,
    pub started_at: u64,
    pub incarnation: u64,
}

impl ServerProcess {
    /// False for the all-zero server process of a lease that does not know its server process (no
    /// memcached process starts at the unix epoch).
    pub fn is_known(&self) -> bool {
        self.started_at != 0
    }
}

/// Finds the first line: `Ok(None)` if incomplete, the line without `\r\n` and the bytes consumed.
fn take_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(0) => Err(ProtocolError::Malformed("line without \\r".into())),
        Some(i) if window[i - 1] == b'\r' => {
            let line = &buf[..i - 1];
            if line.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
                return Err(ProtocolError::Malformed(
                    "control or non-ASCII byte in reply line".into(),
                ));
            }
            Ok(Some((line, i + 1)))
        }
        Some(_) => Err(ProtocolError::Malformed("line without \\r".into())),
        None if buf.len() >= MAX_LINE => Err(ProtocolError::LineTooLong),
        None => Ok(None),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A decimal number in `T`'s range, read straight from the bytes (every reply has two or three).
fn number<T: TryFrom<u64>>(token: &[u8], what: &str) -> Result<T, ProtocolError> {
    let mut value: Option<u64> = (!token.is_empty()).then_some(0);
    for &byte in token {
        value = value
            .filter(|_| byte.is_ascii_digit())
            .and_then(|n| n.checked_mul(10)?.checked_add(u64::from(byte - b'0')));
    }
    value.and_then(|n| T::try_from(n).ok()).ok_or_else(|| {
        ProtocolError::Malformed(format!("{what} is not a number: \"{}\"", text(token)))
    })
}

/// Recognises the error lines every command may answer with.
fn error_line(line: &[u8]) -> Option<ProtocolError> {
    if let Some(msg) = line.strip_prefix(b"SERVER_ERROR") {
        return Some(ProtocolError::ServerError(text(msg.trim_ascii())));
    }
    if let Some(msg) = line.strip_prefix(b"CLIENT_ERROR") {
        let msg = msg.trim_ascii();
        // memcached 1.6 answers a command before authentication with the first, wrong
        // credentials with the second (or the first, when more commands follow them).
        if msg == b"unauthenticated" || msg == b"authentication failure" {
            return Some(ProtocolError::Unauthenticated);
        }
        return Some(ProtocolError::ClientError(text(msg)));
    }
    if line == b"ERROR" {
        return Some(ProtocolError::ClientError("ERROR (unknown command)".into()));
    }
    None
}

/// The reply to the authentication `set`: `STORED` when the server accepted the credentials
/// (or needs none).
pub fn parse_stored(buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
    let Some((line, used)) = take_line(buf)? else {
        return Ok(None);
    };
    if let Some(err) = error_line(line) {
        return Err(err);
    }
    if line != b"STORED" {
        return Err(ProtocolError::Malformed(format!(
            "unexpected reply \"{}\" to authentication",
            text(line)
        )));
    }
    Ok(Some(used))
}

/// Parses one meta reply; a value longer than `max_value` is an error.
pub fn parse_meta(
    buf: &[u8],
    max_value: usize,
) -> Result<Option<(MetaReply, usize)>, ProtocolError> {
    let Some((line, line_len)) = take_line(buf)? else {
        return Ok(None);
    };
    if let Some(err) = error_line(line) {
        return Err(err);
    }
    let mut tokens = line.split(|&b| b == b' ');
    let code = tokens.next().unwrap_or_default();
    let status = match code {
        b"HD" => MetaStatus::Done,
        b"VA" => MetaStatus::Value,
        b"NS" => MetaStatus::NotStored,
        b"EX" => MetaStatus::Exists,
        b"NF" => MetaStatus::NotFound,
        b"EN" => MetaStatus::Miss,
        b"MN" => MetaStatus::NoOp,
        other => {
            return Err(ProtocolError::Malformed(format!(
                "unknown status \"{}\"",
                text(other)
            )));
        }
    };
    let value_len = if status == MetaStatus::Value {
        let len: usize = number(tokens.next().unwrap_or_default(), "VA length")?;
        if len > max_value {
            return Err(ProtocolError::ValueTooLarge {
                len,
                max: max_value,
            });
        }
        Some(len)
    } else {
        None
    };
    let mut reply = MetaReply {
        status,
        cas: None,
        opaque: None,
        value: None,
    };
    for flag in tokens {
        match flag.split_first() {
            Some((b'c', v)) => reply.cas = Some(number(v, "CAS")?),
            Some((b'O', v)) => reply.opaque = Some(number(v, "opaque")?),
            // Other return flags (k, t, f, s, ...) are not requested by the lock; tolerate them.
            Some((f, _)) if f.is_ascii_alphabetic() => {}
            _ => {
                return Err(ProtocolError::Malformed(format!(
                    "bad flag in \"{}\"",
                    text(line)
                )));
            }
        }
    }
    let Some(len) = value_len else {
        return Ok(Some((reply, line_len)));
    };
    let total = line_len + len + 2;
    if buf.len() < total {
        return Ok(None);
    }
    if &buf[line_len + len..total] != b"\r\n" {
        return Err(ProtocolError::Malformed(
            "value not followed by \\r\\n".into(),
        ));
    }
    reply.value = Some(buf[line_len..line_len + len].to_vec());
    Ok(Some((reply, total)))
}

/// Parses a whole `stats` reply into the server process (incarnation 0 until the handshake reads
/// it) and its uptime in seconds (how long ago it started, by its own clock).
pub fn parse_stats(buf: &[u8]) -> Result<Option<(ServerProcess, u64, usize)>, ProtocolError> {
    let mut pos = 0;
    let (mut pid, mut time, mut uptime) = (None, None, None);
    for _ in 0..=MAX_STAT_LINES {
        let Some((line, used)) = take_line(&buf[pos..])? else {
            return Ok(None);
        };
        pos += used;
        if let Some(err) = error_line(line) {
            return Err(err);
        }
        if line == b"END" {
            let (Some(pid), Some(time), Some(uptime)) = (pid, time, uptime) else {
                return Err(ProtocolError::Malformed(
                    "stats without pid, time and uptime".into(),
                ));
            };
            let started_at = u64::checked_sub(time, uptime)
                .ok_or_else(|| ProtocolError::Malformed("stats uptime after time".into()))?;
            let process = ServerProcess {
                pid,
                started_at,
                incarnation: 0,
            };
            return Ok(Some((process, uptime, pos)));
        }
        let mut parts = line.splitn(3, |&b| b == b' ');
        let (Some(b"STAT"), Some(name), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ProtocolError::Malformed(format!(
                "unexpected stats line \"{}\"",
                text(line)
            )));
        };
        match name {
            b"pid" => pid = Some(number(value, "pid")?),
            b"time" => time = Some(number(value, "time")?),
            b"uptime" => uptime = Some(number(value, "uptime")?),
            _ => {}
        }
    }
    Err(ProtocolError::Malformed(format!(
        "stats reply longer than {MAX_STAT_LINES} lines"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(buf: &[u8]) -> Result<Option<(MetaReply, usize)>, ProtocolError> {
        parse_meta(buf, 64)
    }

    #[test]
    fn parses_each_status() {
        let (r, n) = meta(b"HD c17 O3\r\nrest").expect("ok").expect("complete");
        assert_eq!(
            (r.status, r.cas, r.opaque, n),
            (MetaStatus::Done, Some(17), Some(3), 11)
        );
        for (line, status) in [
            (&b"NS c0\r\n"[..], MetaStatus::NotStored),
            (b"EX\r\n", MetaStatus::Exists),
            (b"NF O1\r\n", MetaStatus::NotFound),
            (b"EN\r\n", MetaStatus::Miss),
            (b"MN\r\n", MetaStatus::NoOp),
        ] {
            assert_eq!(meta(line).expect("ok").expect("complete").0.status, status);
        }
        let (r, n) = meta(b"VA 4 c9 O2\r\nownA\r\n")
            .expect("ok")
            .expect("complete");
        assert_eq!(
            (r.value.as_deref(), r.cas, n),
            (Some(&b"ownA"[..]), Some(9), 18)
        );
    }

    #[test]
    fn waits_for_more_bytes_at_every_cut() {
        let full = b"VA 4 c9 O2\r\nownA\r\n";
        for cut in 0..full.len() {
            assert_eq!(meta(&full[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(
            meta(b"HELLO\r\n"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            meta(b"HD c1x\r\n"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(meta(b"HD\n"), Err(ProtocolError::Malformed(_))));
        assert!(matches!(
            meta(b"HD \x01\r\n"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            meta(b"VA 4\r\nownAXX"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            meta(b"VA 65\r\n"),
            Err(ProtocolError::ValueTooLarge { .. })
        ));
        assert!(matches!(
            meta(b"VA 99999999999999999999999\r\n"),
            Err(ProtocolError::Malformed(_))
        ));
        assert_eq!(meta(&[b'H'; MAX_LINE]), Err(ProtocolError::LineTooLong));
        assert!(
            matches!(meta(b"SERVER_ERROR out of memory\r\n"), Err(ProtocolError::ServerError(m)) if m == "out of memory")
        );
        assert!(matches!(
            meta(b"CLIENT_ERROR bad\r\n"),
            Err(ProtocolError::ClientError(_))
        ));
        for refused in [
            &b"CLIENT_ERROR unauthenticated\r\n"[..],
            b"CLIENT_ERROR authentication failure\r\n",
        ] {
            assert_eq!(meta(refused), Err(ProtocolError::Unauthenticated));
        }
        assert!(matches!(
            meta(b"ERROR\r\n"),
            Err(ProtocolError::ClientError(_))
        ));
    }

    #[test]
    fn numbers_are_decimal_digits_in_range() {
        assert_eq!(number::<u64>(b"0", "n"), Ok(0));
        assert_eq!(number::<u64>(b"18446744073709551615", "n"), Ok(u64::MAX));
        assert_eq!(number::<u32>(b"4294967295", "n"), Ok(u32::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"-1",
            b"+1",
            b"1a",
            b" 1",
        ] {
            assert!(number::<u64>(bad, "n").is_err(), "{bad:?}");
        }
        assert!(number::<u32>(b"4294967296", "n").is_err());
    }

    #[test]
    fn stats_give_identity() {
        let reply =
            b"STAT pid 42\r\nSTAT uptime 10\r\nSTAT time 1000\r\nSTAT version 1.6.18\r\nEND\r\n";
        let (id, _, n) = parse_stats(reply).expect("ok").expect("complete");
        assert_eq!(
            (id, n),
            (
                ServerProcess {
                    pid: 42,
                    started_at: 990,
                    incarnation: 0,
                },
                reply.len()
            )
        );
        assert!(id.is_known());
        assert!(!ServerProcess::default().is_known());
        assert_eq!(parse_stats(&reply[..reply.len() - 1]), Ok(None));
        assert!(parse_stats(b"STAT pid 1\r\nEND\r\n").is_err());
        assert!(parse_stats(b"garbage\r\n").is_err());
    }
}
