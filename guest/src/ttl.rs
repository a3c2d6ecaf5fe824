//! Turning a ttl in milliseconds into memcached's `T<seconds>` without ever making it infinite.
//!
//! memcached's clock ticks once a second, so an item sent with `T<n>` lives between n−1 and n
//! seconds after the server receives it (`docs/memcached-facts.md`), so `T1` can live a few ms. `T0` never
//! expires, values above 2592000 are absolute unix times, and 2^32 overflows to "never". The seed
//! truncated `ttl/1000`, so every ttl below one second became a permanent lock.
//!
//! The rule here: send `ceil(ttl/1000) + 1` seconds, so the item outlives the ttl the holder counts
//! on, and refuse any ttl that is not positive or whose wire value would pass `max_expiration`.

use crate::prelude::*;

use crate::error::{Code, LockError, Result};

/// memcached treats larger values as absolute unix timestamps.
pub const MEMCACHED_MAX_RELATIVE_SECS: u32 = 2_592_000;

/// A validated lease duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    ms: u64,
    wire_secs: u32,
}

impl Ttl {
    /// Checks `ttl_ms` against `max_expiration_secs` (`options.max_expiration`).
    pub fn new(ttl_ms: i64, max_expiration_secs: u32) -> Result<Self> {
        if ttl_ms <= 0 {
            return Err(LockError::new(
                Code::InvalidTtl,
                format!("ttl must be a positive number of milliseconds, got {ttl_ms}"),
            ));
        }
        let ms = ttl_ms as u64;
        let wire = ms.div_ceil(1000) + 1;
        if wire > u64::from(max_expiration_secs) {
            return Err(LockError::new(
                Code::InvalidTtl,
                format!(
                    "ttl {ttl_ms} ms needs T{wire} on the wire, above max_expiration={max_expiration_secs} s (ttl may be at most {} ms)",
                    max_ttl_ms(max_expiration_secs)
                ),
            ));
        }
        Ok(Ttl {
            ms,
            wire_secs: wire as u32,
        })
    }

    pub fn ms(self) -> u64 {
        self.ms
    }

    /// The `T` flag's value: never 0, never above `max_expiration`.
    pub fn wire_secs(self) -> u32 {
        self.wire_secs
    }
}

/// The largest ttl accepted with this `max_expiration`.
pub fn max_ttl_ms(max_expiration_secs: u32) -> u64 {
    u64::from(max_expiration_secs.saturating_sub(1)) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_second_ttls_expire() {
        assert_eq!(Ttl::new(1, 2_592_000).map(Ttl::wire_secs), Ok(2));
        assert_eq!(Ttl::new(999, 2_592_000).map(Ttl::wire_secs), Ok(2));
        assert_eq!(Ttl::new(1000, 2_592_000).map(Ttl::wire_secs), Ok(2));
        assert_eq!(Ttl::new(1001, 2_592_000).map(Ttl::wire_secs), Ok(3));
    }

    #[test]
    fn never_infinite_never_absolute() {
        for bad in [0, -1, i64::MIN] {
            assert_eq!(
                Ttl::new(bad, 2_592_000).map_err(|e| e.code),
                Err(Code::InvalidTtl)
            );
        }
        assert!(Ttl::new(2_591_999_000, 2_592_000).is_ok());
        assert!(Ttl::new(2_591_999_001, 2_592_000).is_err());
        assert!(Ttl::new(i64::MAX, 2_592_000).is_err());
        assert!(Ttl::new(10_000, 5).is_err());
    }
}
