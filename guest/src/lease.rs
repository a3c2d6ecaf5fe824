//! A held lock, and the owner token that proves it.

/// What a holder knows about its lock. Mirrors the WIT `lease` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: Vec<u8>,
    /// The random value stored under the key.
    pub owner_token: String,
    /// CAS of the item this lease stored, valid only on `server_epoch`.
    pub cas: u64,
    /// `pid:start-time` of the memcached process that stored the item.
    pub server_epoch: String,
    pub ttl_ms: u64,
    /// Host monotonic time after which the holder must assume the lock lost.
    pub valid_until_ns: u64,
}

/// 128 random bits as 32 lowercase hex digits: unguessable, and never equal to another holder's.
pub fn new_owner_token(random: impl Fn() -> u64) -> String {
    format!("{:016x}{:016x}", random(), random())
}

/// The part of a ttl the holder does not count on: clock rate differences and scheduling
/// (Redlock's rule: 1 % of the ttl plus 2 ms).
pub fn drift_allowance_ms(ttl_ms: u64) -> u64 {
    ttl_ms / 100 + 2
}
