//! The properties, checked on a recorded history.
//!
//! - **Mutual exclusion**: no two clients believe they hold the same key at the same simulated
//!   instant. A client believes from the reply of a successful acquire until the earlier of its
//!   lease's valid-until and the start of its release. Excused (and counted per reason) only
//!   where a stated assumption fails: the key's item was lost — evicted, or its server crashed —
//!   at an instant between the first holder's acquire request and the second holder's
//!   acquisition; or the first holder's clock ran slower than the lock's drift allowance covers,
//!   and then only for the part of the overlap that this extra drift explains.
//! - **Validity against the item's life**: every belief ends within the guaranteed life of the
//!   item that backs it — stored with `T<n>` (by the acquire or the extend that set the belief's
//!   end), memcached keeps an item at least n − 1 seconds, and may drop it right then whatever the
//!   phase of its one-second tick. Excused only for the part explained by drift beyond the
//!   allowance. This catches a holder that believes too long even when no other client happens
//!   to acquire in that window, and whatever luck the tick's phase brought in this run.
//! - **Release and extend safety**: every item a server deleted, or replaced by compare-and-set
//!   (an extend), held an owner token that the server had stored for the client that sent the
//!   command — including tokens of acquires whose outcome that client never learned — and an
//!   extend stored the same token back.
//! - **Fencing**: per key, the fencing tokens of successive acquisitions strictly increase, and the
//!   guarded resource never accepted a token below one it had accepted. Stated assumption: the
//!   key's server did not start twice within one second (memcached's start time has 1 s
//!   resolution); a decrease across such a restart, or across a `reincarnate` fault (which keeps
//!   the start time on purpose), is excused and counted. Release and extend safety have no such
//!   excuse: they must hold across `reincarnate` too.
//! - **Liveness**: after the faults stop and every client has finished its rounds, every client's
//!   final blocking acquire succeeds.
//! - **Bounded calls**: no call lasts longer than its bound in simulated time, and every error is
//!   one the README documents for these conditions.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::history::{Event, Op, Outcome};
use crate::schedule::{Case, FaultKind};

/// The lock's drift allowance covers a clock up to this much slower than real time.
pub const DRIFT_ALLOWANCE: f64 = 0.01;

/// Why an apparent violation was excused: a stated assumption did not hold.
pub const LOST_ITEM: &str = "item lost";
pub const SLOW_CLOCK: &str = "clock drift beyond allowance";
pub const SAME_SECOND_RESTART: &str = "restart within its start second";

#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    /// Apparent violations excused by a stated assumption, per reason.
    pub excused: BTreeMap<&'static str, usize>,
    pub acquisitions: usize,
    /// Writes by stale holders that the guarded resource rejected thanks to fencing tokens.
    pub stale_writes_rejected: usize,
}

impl Report {
    fn excuse(&mut self, reason: &'static str) {
        *self.excused.entry(reason).or_default() += 1;
    }
}

/// Longest a single call may take: connect + handshake + command, possibly a token lookup, resend
/// and orphan cleanup, each bounded by the configured timeouts.
pub fn call_bound(op_timeout: Duration, reconnect: Duration) -> Duration {
    (reconnect + op_timeout * 2) * 6
}

pub struct Limits {
    pub call_bound: Duration,
    pub liveness_timeout: Duration,
}

/// A span during which one client believes it holds a key.
#[derive(Debug, Clone)]
struct Belief {
    client: usize,
    token: String,
    /// When the acquire that began this belief was called (its request left at or after this).
    requested: Duration,
    start: Duration,
    end: Duration,
    /// When the call (acquire or extend) that set `end` began: the holder counts its validity
    /// from about here.
    end_counted_from: Duration,
    /// When that call ended.
    end_set_at: Duration,
}

/// How much longer than the allowance covers a holder with clock `drift` believes, over a
/// validity counted from `from` to `end`: zero unless its clock is slower than the allowance.
pub fn slow_clock_excess(drift: f64, from: Duration, end: Duration) -> Duration {
    if drift >= -DRIFT_ALLOWANCE {
        return Duration::ZERO;
    }
    let counted = end.saturating_sub(from).as_secs_f64();
    Duration::from_secs_f64(counted * (1.0 - (1.0 + drift) / (1.0 - DRIFT_ALLOWANCE)))
}

pub fn check(
    case: &Case,
    events: &[Event],
    limits: &Limits,
    server_of: impl Fn(&str) -> usize,
) -> Report {
    let mut report = Report::default();
    let beliefs = check_calls(events, limits, &mut report);
    check_mutual_exclusion(case, &beliefs, &server_of, &mut report);
    check_validity(case, events, &beliefs, &mut report);
    check_fencing(case, events, &server_of, &mut report);
    check_removals(events, &mut report);
    report
}

/// Bounded calls and documented errors, liveness; returns every belief by key.
fn check_calls<'a>(
    events: &'a [Event],
    limits: &Limits,
    report: &mut Report,
) -> HashMap<&'a str, Vec<Belief>> {
    let mut beliefs: HashMap<&str, Vec<Belief>> = HashMap::new();
    // (client, key) → index of its open belief in `beliefs[key]`.
    let mut open: HashMap<(usize, &str), usize> = HashMap::new();
    for event in events {
        let Event::Call {
            client,
            op,
            key,
            started,
            ended,
            outcome,
            ..
        } = event
        else {
            continue;
        };
        let limit = match op {
            Op::Acquire | Op::Liveness => limits.call_bound + limits.liveness_timeout,
            _ => limits.call_bound,
        };
        if *ended - *started > limit {
            report.violations.push(format!(
                "bounded calls: client c{client} {op:?} {key} took {:?} (bound {limit:?})",
                *ended - *started
            ));
        }
        match outcome {
            Outcome::Acquired {
                token, valid_until, ..
            } => {
                report.acquisitions += 1;
                let list = beliefs.entry(key).or_default();
                list.push(Belief {
                    client: *client,
                    token: token.clone(),
                    requested: *started,
                    start: *ended,
                    end: *valid_until,
                    end_counted_from: *started,
                    end_set_at: *ended,
                });
                open.insert((*client, key), list.len() - 1);
            }
            Outcome::Extended { valid_until } => {
                if let (Some(&i), Some(list)) = (
                    open.get(&(*client, key.as_str())),
                    beliefs.get_mut(key.as_str()),
                ) {
                    let mut belief = list[i].clone();
                    belief.end_counted_from = *started;
                    belief.end_set_at = *ended;
                    if *ended <= list[i].end {
                        // The holder now counts on the extended lease.
                        list[i].end = *valid_until;
                        list[i].end_counted_from = *started;
                        list[i].end_set_at = *ended;
                    } else {
                        // The old lease had run out before the extension's reply: a new belief.
                        belief.start = *ended;
                        belief.end = *valid_until;
                        list.push(belief);
                        open.insert((*client, key), list.len() - 1);
                    }
                }
            }
            Outcome::Error { code } => {
                let documented = [
                    "LOCK_TIMEOUT",
                    "LOCK_LOST",
                    "CONNECT_FAILED",
                    "TIMEOUT",
                    "SERVER_DOWN",
                    "PROTOCOL_ERROR",
                    "SERVER_ERROR",
                ];
                if !documented.contains(&code.as_str()) {
                    report.violations.push(format!(
                        "documented errors: client c{client} {op:?} {key} failed with {code}"
                    ));
                }
                if *op == Op::Liveness {
                    report.violations.push(format!(
                        "liveness: client c{client} could not acquire {key} after faults stopped ({code}, waited {:?})",
                        *ended - *started
                    ));
                }
            }
            _ => {}
        }
        if *op == Op::Release
            && let Some(i) = open.remove(&(*client, key.as_str()))
            && let Some(list) = beliefs.get_mut(key.as_str())
        {
            list[i].end = list[i].end.min(*started);
        }
    }
    beliefs
}

/// Instants at which a server lost every item: an eviction; a crash, whose process dies at the
/// fault's start — and whose restart at its end, if an overlapping crash already restarted the
/// server, restarts a running process and loses its items too.
fn item_losses(case: &Case) -> Vec<(usize, Duration)> {
    let mut losses = Vec::new();
    for f in &case.faults {
        if let Some(server) = f.kind.loses_items() {
            losses.push((server, f.at));
            if matches!(
                f.kind,
                FaultKind::Crash { .. } | FaultKind::Reincarnate { .. }
            ) {
                losses.push((server, f.at + f.duration));
            }
        }
    }
    losses
}

fn check_mutual_exclusion(
    case: &Case,
    beliefs: &HashMap<&str, Vec<Belief>>,
    server_of: &impl Fn(&str) -> usize,
    report: &mut Report,
) {
    let losses = item_losses(case);
    let mut keys: Vec<&&str> = beliefs.keys().collect();
    keys.sort();
    for key in keys {
        let list = &beliefs[*key];
        let server = server_of(key);
        // A belief that ended before it began (its acquire replied after its validity, or it was
        // released at once) covers no instant.
        let held: Vec<&Belief> = list.iter().filter(|b| b.start < b.end).collect();
        for (i, a) in held.iter().enumerate() {
            for b in &held[i + 1..] {
                if a.client == b.client || !(a.start < b.end && b.start < a.end) {
                    continue;
                }
                let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
                let lost = losses
                    .iter()
                    .any(|&(s, at)| s == server && first.requested <= at && at <= second.start);
                let overlap = first.end.min(second.end) - second.start;
                let excess =
                    slow_clock_excess(case.drift[first.client], first.end_counted_from, first.end);
                if lost {
                    report.excuse(LOST_ITEM);
                } else if overlap <= excess {
                    report.excuse(SLOW_CLOCK);
                } else {
                    report.violations.push(format!(
                        "mutual exclusion: c{} held {key} {:?}..{:?} while c{} held it {:?}..{:?}",
                        first.client,
                        first.start,
                        first.end,
                        second.client,
                        second.start,
                        second.end
                    ));
                }
            }
        }
    }
}

/// Every belief's end is no later than the expiry of the item that backs it.
fn check_validity(
    case: &Case,
    events: &[Event],
    beliefs: &HashMap<&str, Vec<Belief>>,
    report: &mut Report,
) {
    // token → every (stored at, lives until) of an item holding it.
    let mut stores: HashMap<&[u8], Vec<(Duration, Option<Duration>)>> = HashMap::new();
    for event in events {
        if let Event::Store {
            value,
            lives_until,
            at,
            ..
        } = event
        {
            stores.entry(value).or_default().push((*at, *lives_until));
        }
    }
    let mut keys: Vec<&&str> = beliefs.keys().collect();
    keys.sort();
    for key in keys {
        for belief in &beliefs[*key] {
            // The store that set this belief's end: the last one of its token by the end of the
            // call that set it.
            let Some(&(_, lives_until)) = stores
                .get(belief.token.as_bytes())
                .and_then(|list| list.iter().rfind(|(at, _)| *at <= belief.end_set_at))
            else {
                report.violations.push(format!(
                    "validity: c{} believes it holds {key} but the server never stored its token",
                    belief.client
                ));
                continue;
            };
            let Some(lives_until) = lives_until else {
                report.violations.push(format!(
                    "validity: c{}'s item for {key} was stored without expiry",
                    belief.client
                ));
                continue;
            };
            if belief.end <= lives_until {
                continue;
            }
            let excess = slow_clock_excess(
                case.drift[belief.client],
                belief.end_counted_from,
                belief.end,
            );
            if belief.end - lives_until <= excess {
                report.excuse(SLOW_CLOCK);
            } else {
                report.violations.push(format!(
                    "validity: c{} believes it holds {key} until {:?}, but its item is sure to live only until {lives_until:?}",
                    belief.client, belief.end
                ));
            }
        }
    }
}

fn check_fencing(
    case: &Case,
    events: &[Event],
    server_of: &impl Fn(&str) -> usize,
    report: &mut Report,
) {
    let restarts: Vec<(usize, Duration)> = case
        .faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Crash { server } => Some((server, f.at + f.duration)),
            _ => None,
        })
        .collect();
    // Restarts that keep pid and start time. The identity-keeping start happens at the first
    // (re)start of the server after the fault begins — its own end, or an overlapping crash's —
    // so anywhere in the fault's window.
    let reincarnations: Vec<(usize, Duration, Duration)> = case
        .faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Reincarnate { server } => Some((server, f.at, f.at + f.duration)),
            _ => None,
        })
        .collect();
    let mut fences: BTreeMap<&str, Vec<(u128, Duration)>> = BTreeMap::new();
    for event in events {
        if let Event::Call {
            key,
            ended,
            outcome: Outcome::Acquired { fence, .. },
            ..
        } = event
        {
            fences.entry(key).or_default().push((*fence, *ended));
        }
    }
    for (key, list) in &fences {
        let server = server_of(key);
        for pair in list.windows(2) {
            let ((earlier, earlier_at), (later, at)) = (pair[0], pair[1]);
            if later > earlier {
                continue;
            }
            // Excused only if the key's server restarted in between, within the same second as
            // the start before it: then both processes report the same start time.
            let starts: Vec<Duration> = std::iter::once(Duration::ZERO)
                .chain(
                    restarts
                        .iter()
                        .filter(|(s, _)| *s == server)
                        .map(|(_, when)| *when),
                )
                .collect();
            let same_second_restart = starts.iter().any(|&r| {
                let previous = starts.iter().copied().filter(|&p| p < r).max();
                r > earlier_at && r <= at && previous.is_some_and(|p| p.as_secs() == r.as_secs())
            });
            let reincarnated = reincarnations
                .iter()
                .any(|&(s, from, to)| s == server && from <= at && to >= earlier_at);
            if same_second_restart || reincarnated {
                report.excuse(SAME_SECOND_RESTART);
            } else {
                report.violations.push(format!(
                    "fencing: {key} acquired at {at:?} with token {later} after token {earlier}"
                ));
            }
        }
    }

    let mut highest: HashMap<&str, u128> = HashMap::new();
    for event in events {
        if let Event::Write {
            client,
            key,
            fence,
            accepted,
            at,
        } = event
        {
            let top = highest.entry(key).or_insert(0);
            if *accepted && *fence < *top {
                report.violations.push(format!(
                    "fencing: the resource accepted c{client}'s token {fence} for {key} at {at:?} after {top}"
                ));
            }
            if *accepted {
                *top = (*top).max(*fence);
            } else {
                report.stale_writes_rejected += 1;
            }
        }
    }
}

/// Every delete or compare-and-set touched only an item that the server had stored for the
/// client that sent it, and an extend kept the token.
fn check_removals(events: &[Event], report: &mut Report) {
    // token → the peer whose request stored it, whether or not that peer learnt the outcome.
    let mut stored_by: HashMap<&[u8], &str> = HashMap::new();
    for event in events {
        if let Event::Store { peer, value, .. } = event {
            stored_by.entry(value).or_insert(peer);
        }
    }
    for event in events {
        let Event::Removal {
            server,
            peer,
            key,
            value,
            replaced_by,
            at,
        } = event
        else {
            continue;
        };
        let what = if replaced_by.is_some() {
            "extended"
        } else {
            "deleted"
        };
        match stored_by.get(value.as_slice()) {
            Some(holder) if *holder == peer => {}
            holder => report.violations.push(format!(
                "{what} safety: {peer} {what} {} on mc{server} at {at:?}, an item stored for {}",
                String::from_utf8_lossy(key),
                holder.copied().unwrap_or("nobody")
            )),
        }
        if let Some(new) = replaced_by
            && new != value
        {
            report.violations.push(format!(
                "extend safety: {peer} changed the owner token of a lease"
            ));
        }
    }
}

#[cfg(test)]
mod tests;
