//! Encoding requests. Every key arrives here already base64-encoded ([`crate::key::LockKey`]) and
//! every value is a token this crate generated, so no caller-controlled byte reaches a command line.
//!
//! Each meta request carries `O<opaque>`; the server echoes it on every meta reply, and the reader
//! checks it, so a reply can never be matched to the wrong request.

use std::io::Write;

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
    /// `mn`: a no-op that answers `MN`.
    NoOp,
    /// `stats`: general statistics, read for the server's pid and start time.
    Stats,
}

impl Request<'_> {
    /// Appends the request's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match *self {
            Request::Add {
                key,
                value,
                ttl_secs,
                opaque,
            } => {
                let _ = write!(
                    out,
                    "ms {} {} b T{ttl_secs} ME c O{opaque}\r\n",
                    key.wire(),
                    value.len()
                );
                out.extend_from_slice(value);
                out.write_all(b"\r\n")
            }
            Request::Extend {
                key,
                value,
                ttl_secs,
                cas,
                opaque,
            } => {
                let _ = write!(
                    out,
                    "ms {} {} b T{ttl_secs} C{cas} c O{opaque}\r\n",
                    key.wire(),
                    value.len()
                );
                out.extend_from_slice(value);
                out.write_all(b"\r\n")
            }
            Request::DeleteIfCas { key, cas, opaque } => {
                write!(out, "md {} b C{cas} O{opaque}\r\n", key.wire())
            }
            Request::Get { key, opaque } => write!(out, "mg {} b v c O{opaque}\r\n", key.wire()),
            Request::NoOp => out.write_all(b"mn\r\n"),
            Request::Stats => out.write_all(b"stats\r\n"),
        };
    }

    /// The opaque the reply must echo, for meta requests that carry one.
    pub fn opaque(&self) -> Option<u32> {
        match *self {
            Request::Add { opaque, .. }
            | Request::Extend { opaque, .. }
            | Request::DeleteIfCas { opaque, .. }
            | Request::Get { opaque, .. } => Some(opaque),
            Request::NoOp | Request::Stats => None,
        }
    }
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
        assert_eq!(encoded(Request::NoOp), "mn\r\n");
        assert_eq!(encoded(Request::Stats), "stats\r\n");
    }
}
