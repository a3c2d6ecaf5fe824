//! The checker's quorum-mode readings and the rollback property, against hand-built histories:
//! each is shown to report the history it exists for.

use std::time::Duration;

use super::*;
use crate::history::{Event, Loss, Op, Outcome};
use crate::schedule::{Case, Fault, FaultKind, Mode};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn quorum(servers: usize, faults: Vec<Fault>) -> Case {
    Case {
        seed: 1,
        clients: 2,
        servers,
        mode: Mode::Quorum,
        drift: vec![0.0, 0.0],
        faults,
    }
}

fn run(case: &Case, events: &[Event]) -> Report {
    let limits = Limits {
        call_bound: Duration::from_secs(10),
        liveness_timeout: Duration::from_secs(10),
        rollback_window: Duration::from_secs(2),
        max_lease: Duration::from_secs(3),
    };
    check(case, events, &limits, |_| 0)
}

fn store(server: usize, client: usize, token: &str, at: u64, lives_until: u64) -> Event {
    Event::Store {
        server,
        peer: format!("c{client}"),
        key: b"k".to_vec(),
        value: token.as_bytes().to_vec(),
        lives_until: Some(ms(lives_until)),
        at: ms(at),
    }
}

fn acquired(client: usize, token: &str, from: u64, to: u64, until: u64, fence: u128) -> Event {
    Event::Call {
        client,
        op: Op::TryAcquire,
        key: "k".into(),
        ttl_ms: 1000,
        started: ms(from),
        ended: ms(to),
        outcome: Outcome::Acquired {
            token: token.into(),
            valid_until: ms(until),
            fence,
        },
    }
}

fn drop(server: usize, token: &str, at: u64, cause: Loss) -> Event {
    Event::Drop {
        server,
        key: b"k".to_vec(),
        value: token.as_bytes().to_vec(),
        at: ms(at),
        cause,
    }
}

fn delete(server: usize, client: usize, token: &str, at: u64) -> Event {
    Event::Delete {
        server,
        peer: format!("c{client}"),
        key: b"k".to_vec(),
        value: token.as_bytes().to_vec(),
        at: ms(at),
    }
}

/// c0 holds "a" on mc0 and mc1 of three from 10 to 1000; mc1 then loses "a" (`cause`), and c1
/// gets "b" on mc1 and mc2 from 500.
fn second_majority_after_a_loss(cause: Loss) -> Vec<Event> {
    vec![
        store(0, 0, "a", 5, 2000),
        store(1, 0, "a", 5, 2000),
        acquired(0, "a", 0, 10, 1000, 0),
        drop(1, "a", 300, cause),
        store(1, 1, "b", 505, 2500),
        store(2, 1, "b", 505, 2500),
        acquired(1, "b", 500, 510, 1500, 0),
    ]
}

#[test]
fn two_majorities_after_a_crash_are_reported() {
    let report = run(
        &quorum(3, vec![]),
        &second_majority_after_a_loss(Loss::Crashed),
    );
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].starts_with("mutual exclusion"));
}

#[test]
fn two_majorities_after_an_eviction_where_the_second_stored_are_excused() {
    let report = run(
        &quorum(3, vec![]),
        &second_majority_after_a_loss(Loss::Evicted),
    );
    assert_eq!(report.violations, Vec::<String>::new());
    assert_eq!(report.excused.get(LOST_ITEM), Some(&1));
}

#[test]
fn an_eviction_on_a_server_the_second_lease_did_not_use_excuses_nothing() {
    let mut events = second_majority_after_a_loss(Loss::Evicted);
    // The eviction was on mc0, which the second lease never touched.
    events[3] = drop(0, "a", 300, Loss::Evicted);
    let report = run(&quorum(3, vec![]), &events);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].starts_with("mutual exclusion"));
}

#[test]
fn a_belief_longer_than_a_majority_of_its_items_live_is_reported() {
    // Items on mc0 and mc1 live until 2000; on mc2 only until 900. Believing until 1500 needs
    // two of three: fine. Believing until 2500 is past every item but one: reported.
    let events = |until: u64| {
        vec![
            store(0, 0, "a", 5, 2000),
            store(1, 0, "a", 5, 2000),
            store(2, 0, "a", 5, 3000),
            acquired(0, "a", 0, 10, until, 0),
        ]
    };
    assert_eq!(
        run(&quorum(3, vec![]), &events(1500)).violations,
        Vec::<String>::new()
    );
    let report = run(&quorum(3, vec![]), &events(2500));
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].starts_with("validity"));
}

#[test]
fn a_belief_stored_on_a_minority_is_reported() {
    let events = vec![store(0, 0, "a", 5, 2000), acquired(0, "a", 0, 10, 900, 0)];
    let report = run(&quorum(3, vec![]), &events);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(
        report.violations[0].contains("1 of the 2 servers"),
        "{:?}",
        report.violations
    );
}

#[test]
fn a_fencing_token_in_quorum_mode_is_reported() {
    let events = vec![
        store(0, 0, "a", 5, 2000),
        store(1, 0, "a", 5, 2000),
        acquired(0, "a", 0, 10, 900, 7),
    ];
    let report = run(&quorum(3, vec![]), &events);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].starts_with("fencing"));
}

/// c1 lost the race for "k" but its add went through on mc2 (at 505).
fn a_lost_acquire(deleted: bool) -> Vec<Event> {
    let mut events = vec![
        store(0, 0, "a", 5, 2000),
        store(1, 0, "a", 5, 2000),
        acquired(0, "a", 0, 10, 900, 0),
        store(2, 1, "b", 505, 2500),
        Event::Call {
            client: 1,
            op: Op::TryAcquire,
            key: "k".into(),
            ttl_ms: 1000,
            started: ms(500),
            ended: ms(520),
            outcome: Outcome::Busy,
        },
    ];
    if deleted {
        events.push(delete(2, 1, "b", 515));
    }
    events
}

#[test]
fn an_item_a_lost_acquire_left_behind_is_reported() {
    let report = run(&quorum(3, vec![]), &a_lost_acquire(false));
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].starts_with("rollback"));
    assert_eq!(
        run(&quorum(3, vec![]), &a_lost_acquire(true)).violations,
        Vec::<String>::new()
    );
}

#[test]
fn an_item_left_behind_by_a_fault_is_not_a_rollback_violation() {
    // A lost reply: the client could not know the add went through.
    let mut events = a_lost_acquire(false);
    events.push(Event::LostReply {
        server: 2,
        peer: "c1".into(),
        at: ms(505),
    });
    let report = run(&quorum(3, vec![]), &events);
    assert_eq!(report.violations, Vec::<String>::new());
    assert_eq!(report.excused.get(FAULT_NEAR_ROLLBACK), Some(&1));
    // A reply lost to another client, or long before, explains nothing.
    let mut events = a_lost_acquire(false);
    events.push(Event::LostReply {
        server: 2,
        peer: "c0".into(),
        at: ms(505),
    });
    assert_eq!(run(&quorum(3, vec![]), &events).violations.len(), 1);
    // A partition between that client and that server does.
    let cut = Fault {
        kind: FaultKind::Partition {
            client: 1,
            server: 2,
        },
        at: ms(510),
        duration: ms(300),
    };
    assert_eq!(
        run(&quorum(3, vec![cut]), &a_lost_acquire(false)).violations,
        Vec::<String>::new()
    );
    // A pause acts only between calls: it cannot cut a rollback short.
    let pause = Fault {
        kind: FaultKind::Pause { client: 1 },
        at: ms(510),
        duration: ms(300),
    };
    assert_eq!(
        run(&quorum(3, vec![pause]), &a_lost_acquire(false))
            .violations
            .len(),
        1
    );
    // A crash long after the acquire does not take the item back in its place.
    let mut events = a_lost_acquire(false);
    events.push(drop(2, "b", 9_000, Loss::Crashed));
    assert_eq!(run(&quorum(3, vec![]), &events).violations.len(), 1);
    // A partition between another client and that server explains nothing.
    let elsewhere = Fault {
        kind: FaultKind::Partition {
            client: 0,
            server: 2,
        },
        at: ms(400),
        duration: ms(300),
    };
    assert_eq!(
        run(&quorum(3, vec![elsewhere]), &a_lost_acquire(false))
            .violations
            .len(),
        1
    );
}

#[test]
fn success_rates_are_counted_by_the_fault_active_when_an_acquire_began() {
    let crash = Fault {
        kind: FaultKind::Crash { server: 2 },
        at: ms(400),
        duration: ms(300),
    };
    let report = run(&quorum(3, vec![crash]), &a_lost_acquire(true));
    assert_eq!(report.attempts.get("none"), Some(&(1, 1)));
    assert_eq!(report.attempts.get("crash"), Some(&(1, 0)));
}

/// c0's lease "a" is stored on mc0 and mc1; mc1's process started at `restarted` (ms).
fn backed_by_a_restarted_server(restarted: u64) -> Vec<Event> {
    vec![
        Event::Restart {
            server: 1,
            at: ms(restarted),
        },
        store(0, 0, "a", 5_005, 7_000),
        store(1, 0, "a", 5_005, 7_000),
        acquired(0, "a", 5_000, 5_010, 5_900, 0),
    ]
}

#[test]
fn a_majority_that_counts_a_young_server_breaks_the_restart_rule() {
    // Restarted 1 s before the store, with max_lease 3 s: it must not count.
    let report = run(&quorum(3, vec![]), &backed_by_a_restarted_server(4_000));
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].starts_with("restart rule"));
    // Restarted 3 s before: it counts.
    assert_eq!(
        run(&quorum(3, vec![]), &backed_by_a_restarted_server(2_000)).violations,
        Vec::<String>::new()
    );
}
