//! Encoding requests. Every key arrives here already base64-encoded ([`crate::key::LockKey`]) and
//! every value is a token this crate generated, so no caller-controlled byte reaches a command line.
//!
//! Each meta request carries `O<opaque>`; the server echoes it on every meta reply, and the reader
//! checks it, so a reply can never be matched to the wrong request.

use crate::prelude::*;

use crate::key::LockKey;

/// One request of the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `ms <key> <len> b T<secs> ME c`: store `value` only if the key is absent (mode E = add),
    /// returning the new CAS.
    Add {
        key: &'a LockKey,
        value: &'a [u8],
        ttl_secs: u32,
        opaque: u32,
    },
    /// `ms <key> <len> b T<secs> C<cas> c`: store `value` only if the item's CAS is still `cas`
    /// (compare-and-set), with a new ttl, returning the new CAS. A lease extension.
    Extend {
        key: &'a LockKey,
        value: &'a [u8],
        ttl_secs: u32,
        cas: u64,
        opaque: u32,
    },
    /// `md <key> b C<cas>`: delete only if the item's CAS is still `cas`.
    DeleteIfCas {
        key: &'a LockKey,
        cas: u64,
        opaque: u32,
    },
    /// `mg <key> b v c`: the value and CAS.
    Get { key: &'a LockKey, opaque: u32 },
    /// Stores `value` under `key` if absent, with no expiry: the server incarnation item only
    /// (lock items always carry a ttl).
    Claim {
        key: &'a LockKey,
        value: &'a [u8],
        opaque: u32,
    },
    /// `mn`: a no-op that answers `MN`.
    NoOp,
    /// `stats`: general statistics, read for the server's pid and start time.
    Stats,
}

/// The key of the authentication `set`. A server that requires authentication reads only the
/// value (`<user> <password>`); one that does not would store it, which memlock never asks for:
/// it authenticates only after a server answered `CLIENT_ERROR unauthenticated`. Even then
/// (a server restarted without `-Y` on the same address) the item is already expired (`-1`).
pub const AUTH_KEY: &[u8] = b"memlock:auth";

/// memcached's ASCII authentication: `set <key> 0 -1 <len>\r\n<user> <password>\r\n`. Kept out
/// of [`Request`] (which is `Debug`) so the password can never be printed.
pub fn encode_authentication(username: &str, password: &str, out: &mut Vec<u8>) {
    let len = username.len() + 1 + password.len();
    out.extend_from_slice(b"set ");
    out.extend_from_slice(AUTH_KEY);
    out.extend_from_slice(b" 0 -1 ");
    decimal(out, len as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(username.as_bytes());
    out.push(b' ');
    out.extend_from_slice(password.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl Request<'_> {
    /// Appends the request's bytes to `out`.
    ///
    /// Written byte by byte rather than with `write!`: this runs on every operation, and keeping
    /// `core::fmt` off the hot path makes it faster and the component smaller.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Request::Add {
                key,
                value,
                ttl_secs,
                opaque,
            } => {
                start(out, b"ms ", key);
                store_tail(out, value, ttl_secs, None, opaque);
            }
            Request::Extend {
                key,
                value,
                ttl_secs,
                cas,
                opaque,
            } => {
                start(out, b"ms ", key);
                store_tail(out, value, ttl_secs, Some(cas), opaque);
            }
            Request::DeleteIfCas { key, cas, opaque } => {
                start(out, b"md ", key);
                out.extend_from_slice(b" b C");
                decimal(out, cas);
                end_line(out, opaque);
            }
            Request::Get { key, opaque } => {
                start(out, b"mg ", key);
                out.extend_from_slice(b" b v c");
                end_line(out, opaque);
            }
            Request::Claim { key, value, opaque } => {
                start(out, b"ms ", key);
                out.push(b' ');
                decimal(out, value.len() as u64);
                out.extend_from_slice(b" b ME");
                end_line(out, opaque);
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            Request::NoOp => out.extend_from_slice(b"mn\r\n"),
            Request::Stats => out.extend_from_slice(b"stats\r\n"),
        }
    }

    /// The opaque the reply must echo, for meta requests that carry one.
    pub fn opaque(&self) -> Option<u32> {
        match *self {
            Request::Add { opaque, .. }
            | Request::Extend { opaque, .. }
            | Request::DeleteIfCas { opaque, .. }
            | Request::Get { opaque, .. }
            | Request::Claim { opaque, .. } => Some(opaque),
            Request::NoOp | Request::Stats => None,
        }
    }
}

/// `<command><key>`.
fn start(out: &mut Vec<u8>, command: &[u8], key: &LockKey) {
    out.extend_from_slice(command);
    out.extend_from_slice(key.wire());
}

/// ` <len> b T<ttl> ME|C<cas> c O<opaque>\r\n<value>\r\n`: the rest of an `ms` request, an add
/// (mode E) without `cas`, a compare-and-set with it.
fn store_tail(out: &mut Vec<u8>, value: &[u8], ttl_secs: u32, cas: Option<u64>, opaque: u32) {
    out.push(b' ');
    decimal(out, value.len() as u64);
    out.extend_from_slice(b" b T");
    decimal(out, u64::from(ttl_secs));
    match cas {
        None => out.extend_from_slice(b" ME"),
        Some(cas) => {
            out.extend_from_slice(b" C");
            decimal(out, cas);
        }
    }
    out.extend_from_slice(b" c");
    end_line(out, opaque);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// ` O<opaque>\r\n`.
fn end_line(out: &mut Vec<u8>, opaque: u32) {
    out.extend_from_slice(b" O");
    decimal(out, u64::from(opaque));
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal ASCII.
fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(req: Request<'_>) -> String {
        let mut out = Vec::new();
        req.encode(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn authentication_is_a_set_whose_length_counts_user_space_password() {
        let mut out = Vec::new();
        encode_authentication("alice", "pass word", &mut out);
        assert_eq!(out, b"set memlock:auth 0 -1 15\r\nalice pass word\r\n");
    }

    #[test]
    fn requests_match_the_meta_protocol() {
        let key = LockKey::new(b"a b\r\n", 250).expect("key");
        assert_eq!(
            encoded(Request::Add {
                key: &key,
                value: b"tok",
                ttl_secs: 2,
                opaque: 7
            }),
            "ms YSBiDQo= 3 b T2 ME c O7\r\ntok\r\n"
        );
        assert_eq!(
            encoded(Request::DeleteIfCas {
                key: &key,
                cas: 42,
                opaque: 8
            }),
            "md YSBiDQo= b C42 O8\r\n"
        );
        assert_eq!(
            encoded(Request::Get {
                key: &key,
                opaque: 9
            }),
            "mg YSBiDQo= b v c O9\r\n"
        );
        assert_eq!(
            encoded(Request::Extend {
                key: &key,
                value: b"tok",
                ttl_secs: 0,
                cas: u64::MAX,
                opaque: u32::MAX
            }),
            "ms YSBiDQo= 3 b T0 C18446744073709551615 c O4294967295\r\ntok\r\n"
        );
        assert_eq!(encoded(Request::NoOp), "mn\r\n");
        assert_eq!(encoded(Request::Stats), "stats\r\n");
    }
}
