//! A held lock as the host sees it, and its portable handle.
//!
//! The handle (`ml1.<key hex>.<owner token>.<cas>.<server process>.<fencing token>`) carries what
//! another process needs to release or extend the lease: that is how `memlock acquire` in one shell hands a lock to
//! `memlock release` in another. It holds no secret beyond the owner token, which is what lets its
//! bearer release the lock: treat it like the lock itself.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::bindings;

/// Orders the acquisitions of a key: each acquisition's token is larger than every earlier one's.
/// A guarded resource stores the largest token it has accepted and rejects smaller ones.
/// `server_start · 2^64 + sequence` (README "Fencing tokens" states the assumptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FencingToken(pub u128);

impl FencingToken {
    pub fn server_start(self) -> u64 {
        (self.0 >> 64) as u64
    }

    pub fn sequence(self) -> u64 {
        self.0 as u64
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The memcached process a lease's item lives in: its pid and start time (unix seconds) from
/// `stats`, and its incarnation (a random number stored in the process by its first client, which
/// a restart erases). A CAS identifies an owner only inside one process; release and extend are
/// sent only to this one. Written `pid:start:incarnation` in handles; all zero when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServerProcess {
    pub pid: u64,
    pub started_at: u64,
    pub incarnation: u64,
}

impl fmt::Display for ServerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.pid, self.started_at, self.incarnation)
    }
}

impl std::str::FromStr for ServerProcess {
    type Err = HandleError;

    /// `pid:start:incarnation`; a handle from before incarnations (`pid:start`) reads as an
    /// unknown server process, so its release and extend find the item by the owner token instead.
    fn from_str(text: &str) -> Result<Self, HandleError> {
        let bad = HandleError("the server process is not pid:start:incarnation");
        let numbers = text
            .split(':')
            .map(|n| n.parse::<u64>().map_err(|_| bad.clone()))
            .collect::<Result<Vec<u64>, _>>()?;
        match numbers[..] {
            [pid, started_at, incarnation] => Ok(ServerProcess {
                pid,
                started_at,
                incarnation,
            }),
            [_, _] => Ok(ServerProcess::default()),
            _ => Err(bad),
        }
    }
}

/// 128 random bits that prove ownership of a lease: stored under the key as 32 lowercase hex
/// digits, which is also how it is written (`Display`) and read (`FromStr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerToken(pub u128);

impl OwnerToken {
    fn to_wit(self) -> bindings::OwnerToken {
        bindings::OwnerToken {
            high: (self.0 >> 64) as u64,
            low: self.0 as u64,
        }
    }

    fn from_wit(token: bindings::OwnerToken) -> Self {
        OwnerToken((u128::from(token.high) << 64) | u128::from(token.low))
    }
}

impl fmt::Display for OwnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for OwnerToken {
    type Err = HandleError;

    fn from_str(text: &str) -> Result<Self, HandleError> {
        let bad = HandleError("the owner token is not 32 hex digits");
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad);
        }
        u128::from_str_radix(text, 16)
            .map(OwnerToken)
            .map_err(|_| bad)
    }
}

/// A lease returned by an acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: Vec<u8>,
    pub owner_token: OwnerToken,
    pub cas: u64,
    pub server_process: ServerProcess,
    pub ttl: Duration,
    /// When this holder must assume the lock lost (`None` for a lease parsed from a handle).
    pub valid_until: Option<Instant>,
    pub fencing_token: FencingToken,
}

const HANDLE_PREFIX: &str = "ml1";

/// A handle that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lease handle: {0}")]
pub struct HandleError(&'static str);

/// Maps the component's clock (`clock.now-ns`) to tokio time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ComponentClock {
    pub origin: Instant,
    pub rate: f64,
}

impl ComponentClock {
    fn to_instant(self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos((ns as f64 / self.rate) as u64)
    }

    fn to_ns(self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.origin).as_nanos() as f64 * self.rate) as u64
    }
}

impl Lease {
    pub(crate) fn from_wit(lease: bindings::Lease, clock: ComponentClock) -> Self {
        Lease {
            key: lease.key,
            owner_token: OwnerToken::from_wit(lease.owner_token),
            cas: lease.cas,
            server_process: ServerProcess {
                pid: lease.server_process.pid,
                started_at: lease.server_process.started_at,
                incarnation: lease.server_process.incarnation,
            },
            ttl: Duration::from_millis(lease.ttl_ms),
            valid_until: Some(clock.to_instant(lease.valid_until_ns)),
            fencing_token: FencingToken(
                (u128::from(lease.fencing_token.server_start) << 64)
                    | u128::from(lease.fencing_token.sequence),
            ),
        }
    }

    pub(crate) fn to_wit(&self, clock: ComponentClock) -> bindings::Lease {
        bindings::Lease {
            key: self.key.clone(),
            owner_token: self.owner_token.to_wit(),
            cas: self.cas,
            server_process: bindings::ServerProcess {
                pid: self.server_process.pid,
                started_at: self.server_process.started_at,
                incarnation: self.server_process.incarnation,
            },
            ttl_ms: u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            valid_until_ns: self.valid_until.map(|t| clock.to_ns(t)).unwrap_or(0),
            fencing_token: bindings::FencingToken {
                server_start: self.fencing_token.server_start(),
                sequence: self.fencing_token.sequence(),
            },
        }
    }

    /// Time left before the holder must assume the lock lost; zero once expired.
    pub fn remaining(&self) -> Duration {
        self.valid_until
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }

    /// The key as text where it is printable UTF-8.
    pub fn key_text(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }

    /// The portable handle: `ml1.<key hex>.<owner token>.<cas>.<server process>.<fencing token>`.
    pub fn handle(&self) -> String {
        let key: String = self.key.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{HANDLE_PREFIX}.{key}.{}.{}.{}.{}",
            self.owner_token, self.cas, self.server_process, self.fencing_token
        )
    }

    /// Parses a handle made by [`Lease::handle`].
    pub fn from_handle(handle: &str) -> Result<Lease, HandleError> {
        let parts: Vec<&str> = handle.trim().split('.').collect();
        let [prefix, key, token, cas, process, fence] = parts[..] else {
            return Err(HandleError(
                "expected ml1.<key>.<token>.<cas>.<server process>.<fencing token>",
            ));
        };
        if prefix != HANDLE_PREFIX {
            return Err(HandleError("it does not start with ml1."));
        }
        let key = decode_hex(key).ok_or(HandleError("the key is not hex"))?;
        let owner_token = token.parse()?;
        let cas = cas
            .parse()
            .map_err(|_| HandleError("the cas is not a number"))?;
        let process = process.parse()?;
        let fence = fence
            .parse()
            .map_err(|_| HandleError("the fencing token is not a number"))?;
        Ok(Lease {
            key,
            owner_token,
            cas,
            server_process: process,
            ttl: Duration::ZERO,
            valid_until: None,
            fencing_token: FencingToken(fence),
        })
    }
}

/// Hex digit pairs to bytes, working on bytes so that no text can split a character; `None`
/// for an empty, odd-length or non-hex string.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.handle())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_round_trips() {
        let lease = Lease {
            key: b"job \r\n/1".to_vec(),
            owner_token: OwnerToken(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            cas: 42,
            server_process: ServerProcess {
                pid: 1234,
                started_at: 1_700_000_000,
                incarnation: 77,
            },
            ttl: Duration::ZERO,
            valid_until: None,
            fencing_token: FencingToken((1_700_000_000u128 << 64) | 42),
        };
        assert_eq!(Lease::from_handle(&lease.handle()), Ok(lease.clone()));
        // A handle written before server processes had an incarnation: the server process reads as unknown,
        // so release and extend go by the owner token.
        let old = format!(
            "ml1.{}.{}.42.1234:1700000000.{}",
            "6a6f62200d0a2f31", lease.owner_token, lease.fencing_token
        );
        let parsed = Lease::from_handle(&old).expect("an old handle still parses");
        assert_eq!(parsed.server_process, ServerProcess::default());
        for bad in [
            "",
            "ml1.",
            "ml2.61.ab.1.1:2",
            "ml1.6.ab.1.1:2",
            "ml1.61.zz.1.1:2",
            "ml1.61.ab.1.1:2.5",
            "ml1.61.0123456789abcdef0123456789abcdeg.1.1:2.5",
            "ml1.61.ab.x.1:2",
            "ml1.61.0123456789abcdef0123456789abcdef.1.12.5",
            "ml1.61.0123456789abcdef0123456789abcdef.1.a:2.5",
            "ml1.61.0123456789abcdef0123456789abcdef.1.1:2:x.5",
            "ml1.61.0123456789abcdef0123456789abcdef.1.1::3.5",
            "ml1.61.0123456789abcdef0123456789abcdef.1.1:2:3:4.5",
        ] {
            assert!(Lease::from_handle(bad).is_err(), "{bad}");
        }
    }

    fn arbitrary_lease() -> impl proptest::strategy::Strategy<Value = Lease> {
        use proptest::prelude::*;
        (
            proptest::collection::vec(any::<u8>(), 1..64),
            any::<u128>(),
            any::<u64>(),
            any::<(u64, u64, u64)>(),
            any::<u128>(),
        )
            .prop_map(
                |(key, token, cas, (pid, started_at, incarnation), fence)| Lease {
                    key,
                    owner_token: OwnerToken(token),
                    cas,
                    server_process: ServerProcess {
                        pid,
                        started_at,
                        incarnation,
                    },
                    ttl: Duration::ZERO,
                    valid_until: None,
                    fencing_token: FencingToken(fence),
                },
            )
    }

    proptest::proptest! {
        #[test]
        fn any_lease_round_trips_through_its_handle(lease in arbitrary_lease()) {
            proptest::prop_assert_eq!(Lease::from_handle(&lease.handle()), Ok(lease));
        }

        #[test]
        fn parsing_never_panics(text in ".{0,120}") {
            let _ = Lease::from_handle(&text);
        }

        /// A valid handle with one character replaced by any other, multi-byte ones included.
        #[test]
        fn a_damaged_handle_never_panics(
            lease in arbitrary_lease(),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            with in proptest::prelude::any::<char>(),
        ) {
            let handle = lease.handle();
            let at = at.index(handle.len());
            let damaged = format!("{}{with}{}", &handle[..at], &handle[at + 1..]);
            let _ = Lease::from_handle(&damaged);
        }
    }

    #[test]
    fn a_multibyte_character_in_the_key_is_an_error() {
        let bad = "ml1.a\u{e9}0.0123456789abcdef0123456789abcdef.1.1:2.5";
        assert!(Lease::from_handle(bad).is_err());
    }
}
