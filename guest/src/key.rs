//! Lock keys: any byte string, sent base64-encoded with the meta protocol's `b` flag.
//!
//! memcached splits a command line on spaces and ends it at `\r\n`, so a raw key containing either
//! turns the rest of the key into flags or whole new commands (`docs/memcached-facts.md`; a raw
//! `"lockI T0"` makes a lease permanent, `"x\r\nflush_all"` flushes the cache, both tested in
//! `tests/tests/keys.rs`). Base64 makes every byte string a single
//! token of `[A-Za-z0-9+/=]`; the server decodes it, so the item is stored under exactly the caller's
//! key and old clients that send the same key raw contend for the same item.
//!
//! memcached's 250-byte limit applies to the *encoded* key: 186 raw bytes fit, 187 do not.

use crate::prelude::*;

use crate::error::{Code, LockError, Result};

/// memcached's hard limit on a key as sent on the wire.
pub const MEMCACHED_MAX_KEY: usize = 250;
/// Keys memlock keeps for itself (the server incarnation item): no lock key may start so.
pub const RESERVED_PREFIX: &[u8] = b"\0memlock:";

/// A key checked against the configured size limit, with its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockKey {
    /// The wire form followed by the raw key: one allocation per key, made on every operation.
    bytes: Vec<u8>,
    wire_len: usize,
}

impl LockKey {
    /// Checks a caller's `raw` key against `max_wire_len` (`options.max_key_size`, at most 250)
    /// and memlock's reserved keys.
    pub fn new(raw: &[u8], max_wire_len: usize) -> Result<Self> {
        if raw.starts_with(RESERVED_PREFIX) {
            return Err(LockError::new(
                Code::InvalidKey,
                "lock keys starting with NUL + \"memlock:\" are reserved for memlock itself",
            ));
        }
        LockKey::internal(raw, max_wire_len)
    }

    /// A key of memlock's own (reserved prefix allowed).
    pub fn internal(raw: &[u8], max_wire_len: usize) -> Result<Self> {
        if raw.is_empty() {
            return Err(LockError::new(Code::InvalidKey, "lock key is empty"));
        }
        let wire_len = base64_len(raw.len());
        if wire_len > max_wire_len {
            return Err(LockError::new(
                Code::InvalidKey,
                format!(
                    "lock key is {} bytes; at most {} fit in max_key_size={max_wire_len} once base64-encoded",
                    raw.len(),
                    max_raw_len(max_wire_len)
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(wire_len + raw.len());
        base64_encode(raw, &mut bytes);
        bytes.extend_from_slice(raw);
        Ok(LockKey { bytes, wire_len })
    }

    /// The caller's bytes.
    pub fn raw(&self) -> &[u8] {
        &self.bytes[self.wire_len..]
    }

    /// The key as it goes on the wire (base64, to be sent with the `b` flag): ASCII only.
    pub fn wire(&self) -> &[u8] {
        &self.bytes[..self.wire_len]
    }

    /// Printable form for messages: the key itself when it is plain text, else its base64.
    pub fn display(&self) -> String {
        match core::str::from_utf8(self.raw()) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
            _ => format!("base64:{}", String::from_utf8_lossy(self.wire())),
        }
    }
}

/// The longest raw key whose base64 form fits in `max_wire_len` bytes.
pub fn max_raw_len(max_wire_len: usize) -> usize {
    max_wire_len / 4 * 3
}

fn base64_len(raw_len: usize) -> usize {
    raw_len.div_ceil(3) * 4
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends `data` in standard base64 with padding, as memcached's `b` flag expects.
fn base64_encode(data: &[u8], out: &mut Vec<u8>) {
    let quad = |b0: u8, b1: u8, b2: u8| {
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        [18u32, 12, 6, 0].map(|shift| ALPHABET[((n >> shift) & 63) as usize])
    };
    let mut chunks = data.chunks_exact(3);
    for chunk in &mut chunks {
        out.extend_from_slice(&quad(chunk[0], chunk[1], chunk[2]));
    }
    match *chunks.remainder() {
        [a] => {
            let [c0, c1, ..] = quad(a, 0, 0);
            out.extend_from_slice(&[c0, c1, b'=', b'=']);
        }
        [a, b] => {
            let [c0, c1, c2, _] = quad(a, b, 0);
            out.extend_from_slice(&[c0, c1, c2, b'=']);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, encoded) in cases {
            let mut out = Vec::new();
            base64_encode(raw, &mut out);
            assert_eq!(out, encoded.as_bytes());
        }
    }

    #[test]
    fn hostile_bytes_become_one_token() {
        let key = LockKey::new(b"lockI T0\r\nflush_all\0 q", 250).expect("valid key");
        assert!(
            key.wire()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b))
        );
    }

    #[test]
    fn limit_applies_to_the_encoded_key() {
        assert!(LockKey::new(&[b'k'; 186], 250).is_ok());
        let err = LockKey::new(&[b'k'; 187], 250).expect_err("187 bytes encode to 252");
        assert_eq!(err.code, Code::InvalidKey);
        assert!(err.message.contains("at most 186"), "{}", err.message);
        assert_eq!(
            LockKey::new(b"", 250).expect_err("empty").code,
            Code::InvalidKey
        );
        assert_eq!(
            LockKey::new(b"\0memlock:incarnation\0", 250)
                .expect_err("reserved")
                .code,
            Code::InvalidKey
        );
    }
}
