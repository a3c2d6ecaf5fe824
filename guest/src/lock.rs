//! The lock: pip-services `MemcachedLock` semantics over [`Servers`], plus leases.
//!
//! Invariants every path keeps (README "Guarantees" states them for users):
//! - an acquire is one `ms ... ME` (add) round trip storing a fresh random owner token, with a
//!   finite ttl ([`Ttl`]); the holder counts on `ttl - drift` from *before* the request was sent;
//! - a release is `md <key> C<cas>` sent only on a connection to the same memcached process that
//!   stored the item (CAS values restart with the server, so a CAS alone proves nothing across a
//!   restart); without a CAS it compares the owner token first. It can never delete another
//!   holder's item;
//! - an acquire whose outcome is unknown is never re-sent blindly: when the connection died, the
//!   owner token is looked up (adopted if stored, re-sent if not); when the server stalled, the
//!   token is remembered as an orphan and deleted, owner-checked, before the next operation on
//!   that server (it expires with its ttl anyway).
//!
//! This file is the semantics (acquire, blocking acquire, release, extend), top to bottom. Beside
//! it: `seed_api` (the seed's key-based methods and their bookkeeping), `discovery` (where the
//! servers are), `orphans` (acquires whose outcome is unknown), `tests` (outcome paths against a
//! scripted memcached).

use crate::prelude::*;

use crate::config::{LockConfig, Mode};
use crate::driver::servers::{Answer, Outcome, Servers, TripFailure};
use crate::driver::{Host, ms_to_ns};
use crate::error::{Code, LockError, Result};
use crate::key::LockKey;
use crate::lease::{FencingToken, Lease, OwnerToken, drift_allowance_ms};
use crate::protocol::{MetaStatus, Request, ServerProcess};
use crate::ttl::Ttl;

/// Longest blocking-acquire timeout accepted (about 34 years): keeps every deadline finite.
pub const MAX_TIMEOUT_MS: i64 = 1 << 40;
/// Extend round trips per call before the last failure is reported.
const EXTEND_ATTEMPTS: usize = 3;

/// What a compare-and-delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deletion {
    Deleted,
    CasMismatch,
    Missing,
    OtherServer,
}

pub struct MemcachedLock<H: Host> {
    host: H,
    config: LockConfig,
    discovery_referenced: bool,
    credential_store_referenced: bool,
    servers: Option<Servers<H::Stream>>,
    /// Leases taken through the seed API (`try_acquire_lock`, `acquire_lock`), by key.
    /// A short list: an instance holds few locks at once, and a map would cost the component
    /// kilobytes of code.
    held: Vec<Lease>,
    orphans: Vec<Orphan>,
    /// Quorum mode: where this instance's recent leases live (server, CAS, process), so that
    /// its release and extend take one round; a lease it does not know is found by owner token.
    replicas: Vec<quorum::Replicas>,
    next_opaque: u32,
}

impl<H: Host> MemcachedLock<H> {
    pub fn new(host: H) -> Self {
        MemcachedLock {
            host,
            config: LockConfig::default(),
            discovery_referenced: false,
            credential_store_referenced: false,
            servers: None,
            held: Vec::new(),
            orphans: Vec::new(),
            replicas: Vec::new(),
            next_opaque: 0,
        }
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    /// Applies ConfigParams; takes effect at the next `open`.
    pub fn configure<K: AsRef<str>, V: AsRef<str>>(&mut self, pairs: &[(K, V)]) -> Result<()> {
        self.config = LockConfig::from_pairs(pairs)?;
        Ok(())
    }

    /// Records whether a discovery service (`pip-services:discovery:<kind>:<name>:<version>`)
    /// and a credential store (`*:credential-store:*:*:1.0`) are among the references.
    pub fn set_references<S: AsRef<str>>(&mut self, descriptors: &[S]) -> Result<()> {
        let referenced = |wanted: &str| {
            descriptors.iter().any(|d| {
                let mut parts = d.as_ref().split(':');
                let kind = parts.nth(1);
                kind.is_some_and(|k| k == wanted || k == "*") && parts.count() == 3
            })
        };
        self.discovery_referenced = referenced("discovery");
        self.credential_store_referenced = referenced("credential-store");
        Ok(())
    }

    pub fn is_open(&self) -> bool {
        self.servers.is_some()
    }

    /// Resolves the connections (through discovery where configured). Opening an open lock is a
    /// no-op. Connections themselves open lazily, on first use.
    pub fn open(&mut self, correlation_id: Option<&str>) -> Result<()> {
        if self.servers.is_some() {
            return Ok(());
        }
        let endpoints = self
            .resolve(correlation_id)
            .and_then(|endpoints| self.resolve_credentials(correlation_id, endpoints))
            .and_then(|endpoints| {
                self.config.check_quorum(endpoints.len())?;
                Ok(endpoints)
            })
            .map_err(|e| e.with_correlation(correlation_id))?;
        self.servers = Some(Servers::new(endpoints, self.config.options.clone()));
        Ok(())
    }

    /// Deletes any orphaned acquire it still can, then closes every connection.
    pub fn close(&mut self, _correlation_id: Option<&str>) -> Result<()> {
        let indexes: Vec<usize> = self.orphans.iter().map(|o| o.server).collect();
        for index in indexes {
            self.clean_orphans(index);
        }
        if let Some(mut servers) = self.servers.take() {
            servers.close_all();
        }
        Ok(())
    }

    /// One attempt: `Some(lease)` if this call stored the lock, `None` if another owner holds it.
    pub fn try_acquire(
        &mut self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
    ) -> Result<Option<Lease>> {
        self.try_acquire_inner(key, ttl_ms)
            .map_err(|e| e.with_correlation(correlation_id))
    }

    /// Attempts until `timeout_ms` has passed, `retry_timeout` (jittered) apart.
    pub fn acquire(
        &mut self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
        timeout_ms: i64,
    ) -> Result<Lease> {
        self.acquire_inner(key, ttl_ms, timeout_ms)
            .map_err(|e| e.with_correlation(correlation_id))
    }

    /// Deletes `lease`'s item if, and only if, it is still that lease's. `true` if this call deleted it.
    pub fn release(&mut self, correlation_id: Option<&str>, lease: &Lease) -> Result<bool> {
        self.release_inner(lease)
            .map_err(|e| e.with_correlation(correlation_id))
    }

    /// Prolongs `lease` to `ttl_ms` from now, if and only if it is still this lease's item on the
    /// same server process (`ms … C<cas>`; never a touch). Returns the updated lease (new CAS and
    /// valid-until, same fencing token); a lease that is no longer held is `LOCK_LOST`.
    pub fn extend(
        &mut self,
        correlation_id: Option<&str>,
        lease: &Lease,
        ttl_ms: i64,
    ) -> Result<Lease> {
        let extended = self
            .extend_inner(lease, ttl_ms)
            .map_err(|e| e.with_correlation(correlation_id))?;
        if let Some(held) = self
            .held
            .iter_mut()
            .find(|h| h.key == lease.key && h.owner_token == lease.owner_token)
        {
            *held = extended.clone();
        }
        Ok(extended)
    }

    fn servers_or_not_opened(&mut self) -> Result<&mut Servers<H::Stream>> {
        self.servers
            .as_mut()
            .ok_or_else(|| LockError::new(Code::NotOpened, "Connection is not opened"))
    }

    fn trip(
        &mut self,
        index: usize,
        request: &Request<'_>,
        idempotent: bool,
        only_on: Option<&ServerProcess>,
        now: u64,
    ) -> core::result::Result<Option<Answer>, TripFailure> {
        let servers = self.servers.as_mut().ok_or_else(|| TripFailure {
            error: LockError::new(Code::NotOpened, "Connection is not opened"),
            outcome: Outcome::NotApplied,
        })?;
        servers.round_trip(&self.host, index, request, idempotent, only_on, now)
    }

    fn opaque(&mut self) -> u32 {
        self.next_opaque = self.next_opaque.wrapping_add(1);
        self.next_opaque
    }

    fn try_acquire_inner(&mut self, raw_key: &[u8], ttl_ms: i64) -> Result<Option<Lease>> {
        let options = self.config.options.clone();
        let index = self.servers_or_not_opened()?.index_for(raw_key);
        let key = LockKey::new(raw_key, options.max_key_size)?;
        let ttl = Ttl::new(ttl_ms, options.max_expiration)?;
        if options.mode == Mode::Quorum {
            return self.try_acquire_quorum(raw_key, key, ttl);
        }
        self.clean_orphans(index);
        let token = OwnerToken::new(|| self.host.random_u64());
        let token_hex = token.hex();
        let mut resent = false;
        loop {
            let sent_at = self.host.now_ns();
            let opaque = self.opaque();
            let request = Request::Add {
                key: &key,
                value: &token_hex,
                ttl_secs: ttl.wire_secs(),
                opaque,
            };
            let valid_until_ns = self.valid_until(sent_at, ttl);
            let lease = |cas: u64, server: &ServerProcess| Lease {
                key: raw_key.to_vec(),
                owner_token: token,
                cas,
                server_process: *server,
                ttl_ms: ttl.ms(),
                valid_until_ns,
                fencing_token: FencingToken {
                    server_start: server.started_at,
                    sequence: cas,
                },
            };
            let result = self.trip(index, &request, false, None, sent_at);
            let failure = match result {
                Ok(Some(answer)) => match (answer.reply.status, answer.reply.cas) {
                    (MetaStatus::Done, Some(0)) => return Err(cas_disabled(&answer.process)),
                    (MetaStatus::Done, Some(cas)) => return Ok(Some(lease(cas, &answer.process))),
                    (MetaStatus::NotStored, _) => return Ok(None),
                    (status, _) => TripFailure {
                        error: LockError::new(
                            Code::Protocol,
                            format!("unexpected reply {status:?} without CAS to an add"),
                        ),
                        outcome: Outcome::Settled,
                    },
                },
                Ok(None) => return unreachable_declined(),
                Err(failure) => failure,
            };
            match failure.outcome {
                Outcome::NotApplied => return Err(failure.error),
                Outcome::Unsettled => {
                    self.remember_orphan(key, token, index, sent_at, ttl);
                    return Err(failure.error);
                }
                Outcome::Settled => match self.lookup_token(index, &key, &token) {
                    Ok(Some((cas, server))) => return Ok(Some(lease(cas, &server))),
                    Ok(None) if !resent => resent = true,
                    Ok(None) => return Err(failure.error),
                    Err(_) => {
                        self.remember_orphan(key, token, index, sent_at, ttl);
                        return Err(failure.error);
                    }
                },
            }
        }
    }

    fn acquire_inner(&mut self, key: &[u8], ttl_ms: i64, timeout_ms: i64) -> Result<Lease> {
        if !(0..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(LockError::new(
                Code::InvalidTtl,
                format!("timeout must be 0..={MAX_TIMEOUT_MS} ms, got {timeout_ms}"),
            ));
        }
        let deadline = self
            .host
            .now_ns()
            .saturating_add(ms_to_ns(timeout_ms as u64));
        let base_ns = ms_to_ns(self.config.options.retry_timeout);
        loop {
            // In quorum mode too few servers answering, or counting yet, is waited out like a
            // busy key; at the deadline the caller learns why.
            let no_quorum = match self.try_acquire_inner(key, ttl_ms) {
                Ok(Some(lease)) => return Ok(lease),
                Ok(None) => None,
                Err(e) if e.code == Code::NoQuorum => Some(e),
                Err(e) => return Err(e),
            };
            let now = self.host.now_ns();
            if now >= deadline {
                if let Some(e) = no_quorum {
                    return Err(e);
                }
                return Err(LockError::new(
                    Code::LockTimeout,
                    format!(
                        "Acquiring lock {} failed on timeout",
                        String::from_utf8_lossy(key)
                    ),
                ));
            }
            // Uniform in [3·base/4, 3·base/2): waiters spread out instead of retrying in lockstep,
            // and the mean interval (9/8 of `retry_timeout`) keeps a waiter, its first attempt
            // included, at no more than one request per `retry_timeout` on average.
            let jittered = base_ns * 3 / 4 + self.host.random_u64() % (base_ns * 3 / 4).max(1);
            if !self.host.sleep_ns(jittered.min(deadline - now)) {
                return Err(LockError::new(
                    Code::Cancelled,
                    "the caller stopped waiting (the call was cancelled)",
                ));
            }
        }
    }

    fn release_inner(&mut self, lease: &Lease) -> Result<bool> {
        let options = self.config.options.clone();
        let index = self.servers_or_not_opened()?.index_for(&lease.key);
        let key = LockKey::new(&lease.key, options.max_key_size)
            .map_err(|e| LockError::new(Code::InvalidLease, e.message))?;
        if options.mode == Mode::Quorum {
            return self.release_quorum(lease, key);
        }
        if lease.cas == 0 || !lease.server_process.is_known() {
            return self.delete_if_token(index, &key, &lease.owner_token);
        }
        match self.delete_if_cas(index, &key, lease.cas, &lease.server_process)? {
            Deletion::Deleted => Ok(true),
            // The CAS moved: another owner, or an extension of this lease made through another
            // copy of it (a handle). The owner token decides.
            Deletion::CasMismatch => self.delete_if_token(index, &key, &lease.owner_token),
            // Another process answers — or the same one, whose incarnation item was evicted or
            // flushed and stored anew. The owner token decides: after a real restart it is gone.
            Deletion::OtherServer => self.delete_if_token(index, &key, &lease.owner_token),
            Deletion::Missing => Ok(false),
        }
    }

    /// `md <key> C<cas>`, sent only on a connection to server process `process`.
    fn delete_if_cas(
        &mut self,
        index: usize,
        key: &LockKey,
        cas: u64,
        process: &ServerProcess,
    ) -> Result<Deletion> {
        let opaque = self.opaque();
        let request = Request::DeleteIfCas { key, cas, opaque };
        let answer = self
            .trip(index, &request, true, Some(process), self.host.now_ns())
            .map_err(|f| f.error)?;
        match answer.map(|a| a.reply.status) {
            // That process is gone, and its items with it.
            None => Ok(Deletion::OtherServer),
            Some(MetaStatus::Done) => Ok(Deletion::Deleted),
            Some(MetaStatus::Exists) => Ok(Deletion::CasMismatch),
            Some(MetaStatus::NotFound) => Ok(Deletion::Missing),
            Some(other) => Err(LockError::new(
                Code::Protocol,
                format!("unexpected reply {other:?} to a delete"),
            )),
        }
    }

    /// Reads the key; deletes it only if it holds `token`.
    fn delete_if_token(&mut self, index: usize, key: &LockKey, token: &OwnerToken) -> Result<bool> {
        match self.lookup_token(index, key, token)? {
            Some((cas, server)) => {
                Ok(self.delete_if_cas(index, key, cas, &server)? == Deletion::Deleted)
            }
            None => Ok(false),
        }
    }

    /// `Some((cas, server))` if `key` currently holds `token`.
    fn lookup_token(
        &mut self,
        index: usize,
        key: &LockKey,
        token: &OwnerToken,
    ) -> Result<Option<(u64, ServerProcess)>> {
        let opaque = self.opaque();
        let request = Request::Get { key, opaque };
        let Some(answer) = self
            .trip(index, &request, true, None, self.host.now_ns())
            .map_err(|f| f.error)?
        else {
            return unreachable_declined();
        };
        match (answer.reply.status, answer.reply.value, answer.reply.cas) {
            (MetaStatus::Miss, _, _) => Ok(None),
            (MetaStatus::Value, Some(value), Some(cas)) => {
                Ok((value == token.hex()).then_some((cas, answer.process)))
            }
            (status, _, _) => Err(LockError::new(
                Code::Protocol,
                format!("unexpected reply {status:?} to a get"),
            )),
        }
    }

    /// When a lease whose request left at `sent_at` stops being counted on.
    fn valid_until(&self, sent_at: u64, ttl: Ttl) -> u64 {
        let options = &self.config.options;
        let allowance = drift_allowance_ms(ttl.ms(), options.drift_ppm, options.drift_ms);
        sent_at.saturating_add(ms_to_ns(ttl.ms() - allowance))
    }

    fn extend_inner(&mut self, lease: &Lease, ttl_ms: i64) -> Result<Lease> {
        let options = self.config.options.clone();
        let index = self.servers_or_not_opened()?.index_for(&lease.key);
        let key = LockKey::new(&lease.key, options.max_key_size)
            .map_err(|e| LockError::new(Code::InvalidLease, e.message))?;
        let ttl = Ttl::new(ttl_ms, options.max_expiration)?;
        if options.mode == Mode::Quorum {
            return self.extend_quorum(lease, key, ttl);
        }
        let lost = |why: &str| {
            LockError::new(
                Code::LockLost,
                format!("lease on {} is lost: {why}", key.display()),
            )
        };
        let (mut cas, mut process) = (lease.cas, lease.server_process);
        if cas == 0 || !process.is_known() {
            let (found, server) = self
                .lookup_token(index, &key, &lease.owner_token)?
                .ok_or_else(|| lost("not held"))?;
            (cas, process) = (found, server);
        }
        // Until an answer settles it: a round trip that failed may or may not have applied, and
        // the owner token tells which. An unchanged CAS holding our token is "still ours, not
        // extended" (retry); a new CAS holding our token is an extension of ours whose reply was
        // lost, or one made through another copy of this lease (retry on that CAS). Only an
        // answer from the server — the item gone, another token, another process — is `LOCK_LOST`;
        // when attempts run out the last real cause is reported, and the caller (a `LeaseGuard`)
        // may retry while the lease is still valid.
        let mut last_failure = None;
        for _ in 0..EXTEND_ATTEMPTS {
            let sent_at = self.host.now_ns();
            let opaque = self.opaque();
            let request = Request::Extend {
                key: &key,
                value: &lease.owner_token.hex(),
                ttl_secs: ttl.wire_secs(),
                cas,
                opaque,
            };
            match self.trip(index, &request, false, Some(&process), sent_at) {
                // Another process answers, or the same one with a new incarnation (its item was
                // evicted or flushed): the token lookup below decides.
                Ok(None) => {}
                Ok(Some(answer)) => match (answer.reply.status, answer.reply.cas) {
                    (MetaStatus::Done, Some(new_cas)) => {
                        return Ok(Lease {
                            cas: new_cas,
                            ttl_ms: ttl.ms(),
                            valid_until_ns: self.valid_until(sent_at, ttl),
                            ..lease.clone()
                        });
                    }
                    (MetaStatus::NotFound, _) => return Err(lost("expired, evicted or released")),
                    (MetaStatus::Exists, _) => {}
                    (status, _) => {
                        return Err(LockError::new(
                            Code::Protocol,
                            format!("unexpected reply {status:?} to an extend"),
                        ));
                    }
                },
                Err(failure) if failure.outcome == Outcome::NotApplied => return Err(failure.error),
                Err(failure) => last_failure = Some(failure.error),
            }
            let found = match self.lookup_token(index, &key, &lease.owner_token) {
                Ok(found) => found,
                // The lookup failed too: report why the extend did.
                Err(e) => return Err(last_failure.unwrap_or(e)),
            };
            match found {
                // Our token, wherever it is found, is our item: extend it there.
                Some((found, server)) => (cas, process) = (found, server),
                None => {
                    return Err(lost(
                        "expired, evicted, released, taken over, or its server restarted",
                    ));
                }
            }
        }
        Err(last_failure.unwrap_or_else(|| lost("its CAS keeps changing")))
    }
}

fn cas_disabled(server: &ServerProcess) -> LockError {
    LockError::new(
        Code::Unsupported,
        format!(
            "memcached (pid {}) returns CAS 0: it runs with CAS disabled (-C), which memlock needs",
            server.pid
        ),
    )
}

/// Requests sent without `only_on` are never declined.
fn unreachable_declined<T>() -> Result<T> {
    Err(LockError::new(
        Code::Protocol,
        "internal: request declined without a server-process guard",
    ))
}

mod credentials;
mod discovery;
mod orphans;
mod quorum;
mod seed_api;
#[cfg(test)]
mod tests;

use orphans::Orphan;
