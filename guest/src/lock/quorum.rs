//! Quorum mode (`options.mode=quorum`): one lock held across every configured server, granted by
//! a majority, so that losing a minority of servers loses neither the lock nor its safety.
//!
//! - **Acquire**: the owner token is stored (`ms … ME`, add) on every server; every request is
//!   written before any reply is read ([`Connection::send_meta`]), so a round costs the slowest
//!   reply, not the sum. The lock is held only if a majority *of all configured servers* stored
//!   it and validity is left: the lease's validity runs from before the first request was sent,
//!   minus the drift allowance, so the time the round took is already subtracted. Otherwise every
//!   server that stored the token gets an owner-checked delete (`md … C<cas>`), and an acquire
//!   whose outcome is unknown on a server (a timeout) is remembered as an orphan there.
//! - **Restarts**: memcached forgets everything when it restarts, so a server that restarted
//!   while a lock was held could grant it again and help a second owner to a majority. A server
//!   process counts toward a majority only once it has run `options.max_lease` (its uptime, read
//!   at the handshake, plus the time since), and every ttl is at most `max_lease`: whatever it
//!   granted before its restart has expired everywhere before it counts again. The price: a
//!   cluster that starts cold, or restarts whole, grants nothing for `max_lease`.
//! - **Release and extend** find the lease's item on every server by its owner token (`mg`, then
//!   `md`/`ms … C<cas>` on the servers that hold it), in two rounds. An extension holds only if
//!   a majority (of servers that count) took it; its validity runs from before its first round.
//! - **Fencing tokens** are not offered: each server's CAS counter is its own, and no single
//!   number orders acquisitions across a majority that changes. A quorum lease's fencing token is
//!   zero.

use crate::prelude::*;

use super::MemcachedLock;
use crate::driver::Host;
use crate::driver::servers::{Outcome, TripFailure};
use crate::error::{Code, LockError, Result};
use crate::key::LockKey;
use crate::lease::{FencingToken, Lease, OwnerToken};
use crate::protocol::{MetaReply, MetaStatus, Request, ServerProcess};
use crate::ttl::Ttl;

/// Where one lease lives: (server, CAS, process) for each server that stored it.
pub struct Replicas {
    token: OwnerToken,
    places: Vec<(usize, u64, ServerProcess)>,
}

/// How many leases an instance remembers the places of; older ones are found by owner token.
const REMEMBERED: usize = 64;

/// What one server answered in a round.
enum Reply {
    Answered {
        reply: MetaReply,
        /// The server process that answered.
        process: ServerProcess,
        /// The server process has run at least `max_lease`.
        counts: bool,
        /// How long it has run, when it does not count yet.
        age_ns: u64,
    },
    Failed(TripFailure),
}

/// A server holding a lease's item: its index, the item's CAS, whether it counts.
type Holder = (usize, u64, bool);

/// Servers needed for a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

impl<H: Host> MemcachedLock<H> {
    /// One request per server (`request(index, opaque)`; `None` skips the server), all written
    /// before any reply is read. With `only_on(index)` = `Some(process)`, the request goes only
    /// on a connection to that server process (a restarted one has lost the item).
    fn round<'k>(
        &mut self,
        request: &dyn Fn(usize, u32) -> Option<Request<'k>>,
        only_on: &dyn Fn(usize) -> Option<ServerProcess>,
        now: u64,
    ) -> Result<Vec<(usize, Reply)>> {
        let options = &self.config.options;
        let max_lease_ns = crate::driver::ms_to_ns(options.max_lease);
        let timeout_ns = crate::driver::ms_to_ns(options.timeout);
        let max_value = options.max_value;
        let drift_ppm = options.drift_ppm;
        let servers = self.servers.as_mut().ok_or_else(not_opened)?;
        let mut sent = Vec::new();
        let mut replies = Vec::new();
        // Servers with a pooled connection first: their requests go out at once. A server
        // without one gets a connection opened before its request leaves, and one that stalls
        // while connecting then delays only the requests after it.
        let mut order: Vec<usize> = (0..servers.len()).collect();
        order.sort_by_key(|&index| !servers.has_pooled(index, now));
        for index in order {
            let opaque = {
                self.next_opaque = self.next_opaque.wrapping_add(1);
                self.next_opaque
            };
            let Some(request) = request(index, opaque) else {
                continue;
            };
            let now = if sent.is_empty() && replies.is_empty() {
                now
            } else {
                self.host.now_ns()
            };
            match servers.take(&self.host, index, now) {
                Ok(mut conn) => {
                    if only_on(index).is_some_and(|process| process != conn.process) {
                        servers.unused(index, conn);
                        continue;
                    }
                    let now = self.host.now_ns();
                    // Judged when the request leaves: the server applies it then or later, when
                    // it is older still.
                    let age_ns = conn.process_age_ns(now, drift_ppm);
                    match conn.send_meta(&self.host, &request, now, now.saturating_add(timeout_ns))
                    {
                        Ok(()) => sent.push((index, conn, opaque, age_ns)),
                        Err(error) => replies.push((
                            index,
                            Reply::Failed(servers.failed(&self.host, index, error)),
                        )),
                    }
                }
                Err(failure) => replies.push((index, Reply::Failed(failure))),
            }
        }
        // Every request is out: the replies get one `options.timeout` from here.
        let deadline = self.host.now_ns().saturating_add(timeout_ns);
        for (index, mut conn, opaque, age_ns) in sent {
            let reply = conn.read_meta(&self.host, Some(opaque), max_value, deadline);
            replies.push((
                index,
                match reply {
                    Ok(reply) => {
                        let process = conn.process;
                        servers.answered(&self.host, index, conn);
                        Reply::Answered {
                            reply,
                            process,
                            counts: age_ns >= max_lease_ns,
                            age_ns,
                        }
                    }
                    Err(error) => Reply::Failed(servers.failed(&self.host, index, error)),
                },
            ));
        }
        Ok(replies)
    }

    pub(super) fn try_acquire_quorum(
        &mut self,
        raw_key: &[u8],
        key: LockKey,
        ttl: Ttl,
    ) -> Result<Option<Lease>> {
        within_max_lease(ttl, self.config.options.max_lease)?;
        let n = self.servers.as_ref().ok_or_else(not_opened)?.len();
        for index in 0..n {
            self.clean_orphans(index);
        }
        let token = OwnerToken::new(|| self.host.random_u64());
        let token_hex = token.hex();
        let sent_at = self.host.now_ns();
        let replies = self.round(
            &|_, opaque| {
                Some(Request::Add {
                    key: &key,
                    value: &token_hex,
                    ttl_secs: ttl.wire_secs(),
                    opaque,
                })
            },
            &|_| None,
            sent_at,
        )?;
        let valid_until_ns = self.valid_until(sent_at, ttl);
        let mut stored: Vec<(usize, u64, ServerProcess)> = Vec::new();
        let (mut votes, mut busy) = (0, 0);
        let mut young: Option<(usize, u64)> = None;
        let mut failure: Option<LockError> = None;
        // Servers where the add's outcome is unknown (it may still be applied).
        let mut unsettled: Vec<usize> = Vec::new();
        for (index, reply) in replies {
            match reply {
                Reply::Answered {
                    reply,
                    process,
                    counts,
                    age_ns,
                } => match (reply.status, reply.cas) {
                    (MetaStatus::Done, Some(cas)) if cas != 0 => {
                        stored.push((index, cas, process));
                        if counts {
                            votes += 1;
                        } else {
                            young = Some((index, age_ns));
                        }
                    }
                    (MetaStatus::Done, _) => {
                        failure.get_or_insert(LockError::new(
                            Code::Unsupported,
                            "memcached runs with CAS disabled (-C); the lock needs CAS",
                        ));
                    }
                    (MetaStatus::NotStored, _) => busy += 1,
                    (status, _) => {
                        failure.get_or_insert(LockError::new(
                            Code::Protocol,
                            format!("unexpected reply {status:?} to an add"),
                        ));
                    }
                },
                Reply::Failed(f) => {
                    if f.outcome == Outcome::Unsettled {
                        unsettled.push(index);
                    }
                    failure.get_or_insert(f.error);
                }
            }
        }
        let now = self.host.now_ns();
        // Held: an add still in flight on a server that timed out only adds to this lease (same
        // owner token, same ttl), and release and extend find it by the token. It must not be
        // cleaned up as an orphan, which would delete a live lease's item.
        if votes >= majority(n) && now < valid_until_ns {
            self.remember_places(token, stored);
            return Ok(Some(Lease {
                key: raw_key.to_vec(),
                owner_token: token,
                cas: 0,
                server_process: ServerProcess::default(),
                ttl_ms: ttl.ms(),
                valid_until_ns,
                fencing_token: FencingToken::default(),
            }));
        }
        // Not held: an add whose outcome is unknown is cleaned up later, by its owner token, and
        // what was stored is taken back now, owner-checked by the CAS each store returned.
        for index in unsettled {
            self.remember_orphan(key.clone(), token, index, sent_at, ttl);
        }
        for (index, cas, _) in stored {
            let opaque = self.opaque();
            let request = Request::DeleteIfCas {
                key: &key,
                cas,
                opaque,
            };
            if let Err(f) = self.trip(index, &request, true, None, self.host.now_ns())
                && f.outcome == Outcome::Unsettled
            {
                self.remember_orphan(key.clone(), token, index, sent_at, ttl);
            }
        }
        if busy > 0 {
            return Ok(None);
        }
        if votes >= majority(n) {
            return Err(LockError::new(
                Code::NoQuorum,
                "a majority stored the lock, but only after its validity had passed",
            ));
        }
        if let Some((index, age_ns)) = young {
            let endpoint = self
                .servers
                .as_ref()
                .ok_or_else(not_opened)?
                .endpoint(index);
            return Err(LockError::new(
                Code::NoQuorum,
                format!(
                    "no majority: memcached at {endpoint} started {}.{} s ago; a server counts after options.max_lease ({} ms)",
                    age_ns / 1_000_000_000,
                    age_ns / 100_000_000 % 10,
                    self.config.options.max_lease
                ),
            ));
        }
        Err(match failure {
            Some(e) => LockError::new(Code::NoQuorum, format!("no majority of {n} servers: {e}")),
            None => LockError::new(Code::NoQuorum, format!("no majority of {n} servers")),
        })
    }

    /// Finds the lease's item on every server by its owner token: `(index, cas)` of the servers
    /// that hold it (and whether each counts), and the first failure.
    fn holders(
        &mut self,
        key: &LockKey,
        token: &OwnerToken,
        now: u64,
    ) -> Result<(Vec<Holder>, Option<LockError>)> {
        let token_hex = token.hex();
        let replies = self.round(
            &|_, opaque| Some(Request::Get { key, opaque }),
            &|_| None,
            now,
        )?;
        let mut found = Vec::new();
        let mut failure = None;
        for (index, reply) in replies {
            match reply {
                Reply::Answered { reply, counts, .. } => {
                    match (reply.status, reply.value, reply.cas) {
                        (MetaStatus::Value, Some(value), Some(cas)) if value == token_hex => {
                            found.push((index, cas, counts))
                        }
                        (MetaStatus::Value | MetaStatus::Miss, _, _) => {}
                        (status, _, _) => {
                            failure.get_or_insert(LockError::new(
                                Code::Protocol,
                                format!("unexpected reply {status:?} to a get"),
                            ));
                        }
                    }
                }
                Reply::Failed(f) => {
                    failure.get_or_insert(f.error);
                }
            }
        }
        Ok((found, failure))
    }

    /// Remembers where a lease lives (most recent last; the oldest is forgotten past
    /// [`REMEMBERED`]).
    fn remember_places(&mut self, token: OwnerToken, places: Vec<(usize, u64, ServerProcess)>) {
        self.replicas.retain(|r| r.token != token);
        if self.replicas.len() >= REMEMBERED {
            self.replicas.remove(0);
        }
        self.replicas.push(Replicas { token, places });
    }

    fn places_of(&self, token: &OwnerToken) -> Option<Vec<(usize, u64, ServerProcess)>> {
        self.replicas
            .iter()
            .find(|r| r.token == *token)
            .map(|r| r.places.clone())
    }

    /// One round of `request(index, cas)` to the servers in `places`, each only on a connection
    /// to the process that stored the item.
    fn round_on_places<'k>(
        &mut self,
        places: &[(usize, u64, ServerProcess)],
        request: &dyn Fn(u64, u32) -> Request<'k>,
        now: u64,
    ) -> Result<Vec<(usize, Reply)>> {
        let place = |index: usize| places.iter().find(|p| p.0 == index);
        self.round(
            &|index, opaque| place(index).map(|p| request(p.1, opaque)),
            &|index| place(index).map(|p| p.2),
            now,
        )
    }

    /// Deletes the lease's item wherever it still holds the lease's owner token. `true` if this
    /// call deleted it on at least one server.
    pub(super) fn release_quorum(&mut self, lease: &Lease, key: LockKey) -> Result<bool> {
        let token = lease.owner_token;
        if let Some(places) = self.places_of(&token) {
            self.replicas.retain(|r| r.token != token);
            // One round: `md … C<cas>` where this instance's acquire or extend stored the item.
            let replies = self.round_on_places(
                &places,
                &|cas, opaque| Request::DeleteIfCas {
                    key: &key,
                    cas,
                    opaque,
                },
                self.host.now_ns(),
            )?;
            let settled =
                |status: MetaStatus| matches!(status, MetaStatus::Done | MetaStatus::NotFound);
            let all_settled = places.iter().all(|p| {
                replies.iter().any(|(i, r)| {
                    *i == p.0 && matches!(r, Reply::Answered { reply, .. } if settled(reply.status))
                })
            });
            let deleted = replies.iter().any(|(_, r)| done(r));
            if all_settled {
                return Ok(deleted);
            }
            // A CAS moved (an extension through another copy of the lease), a server failed or
            // restarted: the owner token decides what is left.
            return Ok(self.release_by_token(&key, &token)? || deleted);
        }
        self.release_by_token(&key, &token)
    }

    /// Release without known places: find the item by owner token, then delete it by its CAS.
    fn release_by_token(&mut self, key: &LockKey, token: &OwnerToken) -> Result<bool> {
        let (found, failure) = self.holders(key, token, self.host.now_ns())?;
        let cas_of = |index: usize| found.iter().find(|(i, _, _)| *i == index).map(|f| f.1);
        let replies = self.round(
            &|index, opaque| cas_of(index).map(|cas| Request::DeleteIfCas { key, cas, opaque }),
            &|_| None,
            self.host.now_ns(),
        )?;
        let deleted = replies.iter().any(|(_, r)| done(r));
        match failure {
            // Nothing could be checked anywhere: the caller must know the lock may still stand.
            Some(e) if found.is_empty() && !deleted => Err(e),
            _ => Ok(deleted),
        }
    }

    /// Prolongs the lease on every server that still holds it; held only with a majority.
    pub(super) fn extend_quorum(&mut self, lease: &Lease, key: LockKey, ttl: Ttl) -> Result<Lease> {
        within_max_lease(ttl, self.config.options.max_lease)?;
        let n = self.servers.as_ref().ok_or_else(not_opened)?.len();
        let token = lease.owner_token;
        let token_hex = token.hex();
        let extend = |cas: u64, opaque: u32| Request::Extend {
            key: &key,
            value: &token_hex,
            ttl_secs: ttl.wire_secs(),
            cas,
            opaque,
        };
        // One round where this instance knows the places; validity runs from its start.
        if let Some(places) = self.places_of(&token) {
            let sent_at = self.host.now_ns();
            let replies = self.round_on_places(&places, &extend, sent_at)?;
            if let Some(extended) = self.extension(lease, &replies, n, sent_at, ttl) {
                return Ok(extended);
            }
        }
        // Otherwise (or if that fell short): find the item by owner token, then extend.
        let sent_at = self.host.now_ns();
        let (found, _) = self.holders(&key, &token, sent_at)?;
        let cas_of = |index: usize| found.iter().find(|(i, _, _)| *i == index).map(|f| f.1);
        let replies = self.round(
            &|index, opaque| cas_of(index).map(|cas| extend(cas, opaque)),
            &|_| None,
            self.host.now_ns(),
        )?;
        if let Some(extended) = self.extension(lease, &replies, n, sent_at, ttl) {
            return Ok(extended);
        }
        let votes = counted(&replies);
        Err(LockError::new(
            Code::LockLost,
            format!(
                "lease on {} is held by {votes} of {n} servers that count, not a majority (found on {})",
                String::from_utf8_lossy(&lease.key),
                found.len()
            ),
        ))
    }

    /// The extended lease if a majority of servers that count took the extension while its
    /// validity (from `sent_at`) lasts; its places are remembered.
    fn extension(
        &mut self,
        lease: &Lease,
        replies: &[(usize, Reply)],
        n: usize,
        sent_at: u64,
        ttl: Ttl,
    ) -> Option<Lease> {
        let valid_until_ns = self.valid_until(sent_at, ttl);
        if counted(replies) < majority(n) || self.host.now_ns() >= valid_until_ns {
            return None;
        }
        let places = replies
            .iter()
            .filter_map(|(index, r)| match r {
                Reply::Answered { reply, process, .. } if reply.status == MetaStatus::Done => {
                    reply.cas.map(|cas| (*index, cas, *process))
                }
                _ => None,
            })
            .collect();
        self.remember_places(lease.owner_token, places);
        Some(Lease {
            ttl_ms: ttl.ms(),
            valid_until_ns,
            ..lease.clone()
        })
    }
}

/// Servers that count and took the request.
fn counted(replies: &[(usize, Reply)]) -> usize {
    replies
        .iter()
        .filter(|(_, r)| done(r) && matches!(r, Reply::Answered { counts: true, .. }))
        .count()
}

/// Quorum mode bounds every ttl by `options.max_lease` (what the restart rule relies on).
fn within_max_lease(ttl: Ttl, max_lease: u64) -> Result<()> {
    if ttl.ms() > max_lease {
        return Err(LockError::new(
            Code::InvalidTtl,
            format!(
                "in quorum mode a ttl is at most options.max_lease ({max_lease} ms), got {} ms",
                ttl.ms()
            ),
        ));
    }
    Ok(())
}

/// The server answered `HD`: the request took effect.
fn done(reply: &Reply) -> bool {
    matches!(reply, Reply::Answered { reply, .. } if reply.status == MetaStatus::Done)
}

fn not_opened() -> LockError {
    LockError::new(Code::NotOpened, "Connection is not opened")
}
