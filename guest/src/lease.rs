//! A held lock, and the owner token that proves it.

use crate::prelude::*;

use crate::protocol::ServerProcess;

/// Orders the acquisitions of a key: later acquisitions carry larger tokens.
///
/// It is the memcached process's start time (seconds, from `stats`) and the CAS the acquisition's
/// item got. CAS values come from one counter per process that only grows (evicting or deleting the
/// item, even `flush_all`, does not reset it), so within a process later acquisitions get larger
/// CAS values; a restarted process has a later start time. Assumptions (README "Fencing tokens"):
/// the key stays on the same server, that server's wall clock does not step back across restarts,
/// and a process runs into a later second than the one it started in before the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct FencingToken {
    pub server_start: u64,
    pub sequence: u64,
}

impl FencingToken {
    /// One number: `server_start · 2^64 + sequence`.
    pub fn as_u128(self) -> u128 {
        (u128::from(self.server_start) << 64) | u128::from(self.sequence)
    }
}

/// What a holder knows about its lock. Mirrors the WIT `lease` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: Vec<u8>,
    /// The random value whose hex form is stored under the key.
    pub owner_token: OwnerToken,
    /// CAS of the item this lease stored, valid only on `server_process`.
    pub cas: u64,
    /// The memcached process that stored the item (all zero: unknown).
    pub server_process: ServerProcess,
    pub ttl_ms: u64,
    /// Host monotonic time after which the holder must assume the lock lost.
    pub valid_until_ns: u64,
    /// Set at acquisition; kept by extensions.
    pub fencing_token: FencingToken,
}

/// 128 random bits: unguessable, and never equal to another holder's. Stored under the key as
/// 32 lowercase hex digits ([`OwnerToken::hex`]), so a holder can recognise its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerToken {
    pub high: u64,
    pub low: u64,
}

impl OwnerToken {
    /// A fresh token from two 64-bit draws.
    pub fn new(random: impl Fn() -> u64) -> Self {
        OwnerToken {
            high: random(),
            low: random(),
        }
    }

    /// The value stored under the key: 32 lowercase hex digits, `high` first.
    pub fn hex(&self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let value = (u128::from(self.high) << 64) | u128::from(self.low);
        let mut out = [0u8; 32];
        for (pair, byte) in out.chunks_exact_mut(2).zip(value.to_be_bytes()) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        out
    }
}

/// The part of a ttl the holder does not count on: clock rate differences and scheduling
/// (Redlock's rule, configurable: `options.drift_factor` of the ttl plus `options.drift_ms`).
/// Never more than the ttl itself.
pub fn drift_allowance_ms(ttl_ms: u64, drift_ppm: u32, drift_ms: u64) -> u64 {
    (ttl_ms.saturating_mul(u64::from(drift_ppm)) / 1_000_000)
        .saturating_add(drift_ms)
        .min(ttl_ms)
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;

    use super::*;

    #[test]
    fn owner_tokens_are_32_hex_digits_of_two_draws() {
        let draws = Cell::new(0u64);
        let token = OwnerToken::new(|| {
            draws.set(draws.get() + 1);
            if draws.get() == 1 {
                0x0123_4567_89ab_cdef
            } else {
                0xf
            }
        });
        assert_eq!(&token.hex(), b"0123456789abcdef000000000000000f");
        assert_eq!(draws.get(), 2);
    }
}
