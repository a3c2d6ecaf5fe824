//! The checker against hand-built histories: each kind of violation is reported, and histories
//! that a stated assumption explains are excused (and counted), not reported.

use std::time::Duration;

use super::*;
use crate::history::{Event, Op, Outcome};
use crate::schedule::{Case, Fault, FaultKind, Mode};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn case(faults: Vec<Fault>, drift: Vec<f64>) -> Case {
    Case {
        seed: 1,
        clients: drift.len(),
        servers: 1,
        mode: Mode::Shard,
        drift,
        faults,
    }
}

fn limits() -> Limits {
    Limits {
        call_bound: Duration::from_secs(10),
        liveness_timeout: Duration::from_secs(10),
        rollback_window: Duration::from_secs(2),
        max_lease: Duration::from_secs(3),
    }
}

/// Exactly one violation, of the property named `property`.
fn assert_one_violation(report: &Report, property: &str) {
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(
        report.violations[0].starts_with(property),
        "{:?}",
        report.violations
    );
}

fn run(case: &Case, events: &[Event]) -> Report {
    check(case, events, &limits(), |_| 0)
}

/// A story of one server: calls, what the server stored and removed.
#[derive(Default)]
struct Story(Vec<Event>);

impl Story {
    /// `client` acquires `key` with `token` by a call from `from` to `to`, believing until
    /// `until`; the server stored it at `to` − 1 ms, to expire at `expires`.
    fn acquire(
        &mut self,
        client: usize,
        token: &str,
        from: u64,
        to: u64,
        until: u64,
        expires: u64,
    ) -> &mut Self {
        self.store(client, token, to - 1, expires);
        self.0.push(Event::Call {
            client,
            op: Op::Acquire,
            key: "k".into(),
            ttl_ms: 1000,
            started: ms(from),
            ended: ms(to),
            outcome: Outcome::Acquired {
                token: token.into(),
                valid_until: ms(until),
                fence: u128::from(to),
            },
        });
        self
    }

    /// The server stored `token` for `client` (an acquire whose outcome may be unknown).
    fn store(&mut self, client: usize, token: &str, at: u64, expires: u64) -> &mut Self {
        self.0.push(Event::Store {
            server: 0,
            peer: format!("c{client}"),
            key: b"k".to_vec(),
            value: token.as_bytes().to_vec(),
            lives_until: Some(ms(expires)),
            at: ms(at),
        });
        self
    }

    /// The server lost `token`'s item (evicted, or gone with its process).
    fn lose(&mut self, token: &str, at: u64) -> &mut Self {
        self.0.push(Event::Drop {
            server: 0,
            key: b"k".to_vec(),
            value: token.as_bytes().to_vec(),
            at: ms(at),
            cause: Loss::Evicted,
        });
        self
    }

    fn release(&mut self, client: usize, at: u64) -> &mut Self {
        self.0.push(Event::Call {
            client,
            op: Op::Release,
            key: "k".into(),
            ttl_ms: 1000,
            started: ms(at),
            ended: ms(at + 1),
            outcome: Outcome::Released { deleted: true },
        });
        self
    }

    fn changed(
        &mut self,
        client: usize,
        token: &str,
        replaced_by: Option<&str>,
        at: u64,
    ) -> &mut Self {
        self.0.push(match replaced_by {
            None => Event::Delete {
                server: 0,
                peer: format!("c{client}"),
                key: b"k".to_vec(),
                value: token.as_bytes().to_vec(),
                at: ms(at),
            },
            Some(new) => Event::Replace {
                server: 0,
                peer: format!("c{client}"),
                key: b"k".to_vec(),
                old: token.as_bytes().to_vec(),
                new: new.as_bytes().to_vec(),
                at: ms(at),
            },
        });
        self
    }

    fn acquire_with_fence(
        &mut self,
        client: usize,
        token: &str,
        at: u64,
        fence: u128,
    ) -> &mut Self {
        self.store(client, token, at - 1, at + 5000);
        self.0.push(Event::Call {
            client,
            op: Op::TryAcquire,
            key: "k".into(),
            ttl_ms: 1000,
            started: ms(at - 2),
            ended: ms(at),
            outcome: Outcome::Acquired {
                token: token.into(),
                valid_until: ms(at + 10),
                fence,
            },
        });
        self.release(client, at + 5)
    }
}

#[test]
fn an_overlap_of_two_holders_is_reported() {
    let mut story = Story::default();
    story
        .acquire(0, "a", 0, 10, 1000, 2000)
        .acquire(1, "b", 500, 510, 1500, 2500);
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    assert_one_violation(&report, "mutual exclusion");
}

#[test]
fn an_overlap_after_the_first_item_was_lost_between_the_two_stores_is_excused() {
    let mut story = Story::default();
    story
        .acquire(0, "a", 0, 10, 1000, 2000)
        .lose("a", 300)
        .acquire(1, "b", 500, 510, 1500, 2500);
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    assert_eq!(report.violations, Vec::<String>::new());
    assert_eq!(report.excused.get(LOST_ITEM), Some(&1));
}

#[test]
fn a_loss_that_cannot_explain_the_overlap_excuses_nothing() {
    // Lost after the second lease was stored: the second add succeeded while the first item
    // was still there.
    let mut late = Story::default();
    late.acquire(0, "a", 0, 10, 1000, 2000)
        .acquire(1, "b", 500, 510, 1500, 2500)
        .lose("a", 600);
    let report = run(&case(vec![], vec![0.0, 0.0]), &late.0);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.excused.is_empty());
    // Another lease's item lost (an eviction before the first lease was taken): no excuse.
    let mut other = Story::default();
    other
        .store(2, "z", 0, 1000)
        .lose("z", 50)
        .acquire(0, "a", 100, 110, 1000, 2000)
        .acquire(1, "b", 500, 510, 1500, 2500);
    let report = run(&case(vec![], vec![0.0, 0.0, 0.0]), &other.0);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.excused.is_empty());
}

#[test]
fn two_leases_of_one_client_overlapping_are_reported() {
    // c0 never released its first lease (a crashed holder) and was granted the key again.
    let mut story = Story::default();
    story
        .acquire(0, "a", 0, 10, 1000, 2000)
        .acquire(0, "a2", 500, 510, 1500, 2500);
    let report = run(&case(vec![], vec![0.0]), &story.0);
    assert_one_violation(&report, "mutual exclusion");
}

#[test]
fn deleting_a_lease_while_it_is_believed_held_is_reported_even_by_its_own_client() {
    // c0's stale release (of an older lease) deletes its current lease "a2".
    let mut story = Story::default();
    story
        .acquire(0, "a2", 0, 10, 1000, 2000)
        .changed(0, "a2", None, 300);
    let report = run(&case(vec![], vec![0.0]), &story.0);
    assert_one_violation(&report, "release safety");
}

#[test]
fn drift_excuses_only_the_overlap_it_explains() {
    // c0's clock runs 3 % slow: over its 1000 ms of validity, 2 % beyond the allowance is
    // about 20 ms of excess belief.
    let slow = vec![-0.03, 0.0];
    let mut small = Story::default();
    small
        .acquire(0, "a", 0, 10, 1000, 2000)
        .acquire(1, "b", 990, 995, 2000, 3000);
    let report = run(&case(vec![], slow.clone()), &small.0);
    assert_eq!(report.violations, Vec::<String>::new());
    assert_eq!(report.excused.get(SLOW_CLOCK), Some(&1));

    let mut large = Story::default();
    large
        .acquire(0, "a", 0, 10, 1000, 2000)
        .acquire(1, "b", 500, 510, 2000, 3000);
    let report = run(&case(vec![], slow), &large.0);
    assert_eq!(
        report.violations.len(),
        1,
        "490 ms is not drift: {:?}",
        report.violations
    );
}

#[test]
fn a_fast_clock_excuses_nothing() {
    let mut story = Story::default();
    story
        .acquire(0, "a", 0, 10, 1000, 2000)
        .acquire(1, "b", 990, 995, 2000, 3000);
    let report = run(&case(vec![], vec![0.03, 0.0]), &story.0);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
}

#[test]
fn a_release_of_another_owners_item_is_reported() {
    let mut story = Story::default();
    story
        .acquire(0, "a", 0, 10, 1000, 2000)
        .release(0, 100)
        .acquire(1, "b", 200, 210, 1200, 2200)
        .changed(0, "b", None, 300);
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    // Stored for c1, and c1 believed it held at that instant: both rules see it.
    assert_eq!(
        report.violations,
        vec![
            "deleted safety: c0 deleted k on mc0 at 300ms, an item stored for c1".to_string(),
            "release safety: c0 deleted k on mc0 at 300ms while c1 held that lease".to_string(),
        ]
    );
}

#[test]
fn deleting_the_item_of_an_acquire_whose_outcome_was_unknown_is_reported() {
    // c1's acquire timed out, but the server stored its token; c0 then deletes that item.
    let mut story = Story::default();
    story
        .store(1, "orphan", 50, 2050)
        .changed(0, "orphan", None, 300);
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(
        report.violations[0].contains("stored for c1"),
        "{:?}",
        report.violations
    );
    // Its own client cleaning it up is fine.
    let mut story = Story::default();
    story
        .store(1, "orphan", 50, 2050)
        .changed(1, "orphan", None, 300);
    assert_eq!(
        run(&case(vec![], vec![0.0, 0.0]), &story.0).violations,
        Vec::<String>::new()
    );
}

#[test]
fn an_extend_by_a_non_owner_is_reported() {
    let mut story = Story::default();
    story
        .acquire(1, "b", 0, 10, 1000, 2000)
        .changed(0, "b", Some("b"), 300);
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    assert_one_violation(&report, "extended safety");
    // An extend that swaps in another token is reported even by the owner.
    let mut story = Story::default();
    story
        .acquire(1, "b", 0, 10, 1000, 2000)
        .changed(1, "b", Some("x"), 300);
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("changed the owner token"))
    );
}

#[test]
fn a_fencing_token_regression_is_reported() {
    let mut story = Story::default();
    story
        .acquire_with_fence(0, "a", 100, 50)
        .acquire_with_fence(1, "b", 200, 40);
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    assert_one_violation(&report, "fencing");
    // Across a restart that kept the start second, it is an excused assumption.
    let reincarnate = Fault {
        kind: FaultKind::Reincarnate { server: 0 },
        at: ms(150),
        duration: ms(10),
    };
    let report = run(&case(vec![reincarnate], vec![0.0, 0.0]), &story.0);
    assert_eq!(report.violations, Vec::<String>::new());
    assert_eq!(report.excused.get(SAME_SECOND_RESTART), Some(&1));
}

#[test]
fn a_belief_that_outlives_its_item_is_reported() {
    // No other client acquires: only the validity property can see it.
    let mut story = Story::default();
    story.acquire(0, "a", 0, 10, 1500, 1000);
    let report = run(&case(vec![], vec![0.0]), &story.0);
    assert_one_violation(&report, "validity");
    // Released before the item expires: fine.
    let mut story = Story::default();
    story.acquire(0, "a", 0, 10, 1500, 1000).release(0, 900);
    assert_eq!(
        run(&case(vec![], vec![0.0]), &story.0).violations,
        Vec::<String>::new()
    );
}

#[test]
fn a_slow_clock_excuses_only_the_validity_overrun_it_explains() {
    // 3 % slow: about 21 ms of excess belief on a 1000 ms lease.
    let mut small = Story::default();
    small.acquire(0, "a", 0, 10, 1010, 1000);
    let report = run(&case(vec![], vec![-0.03]), &small.0);
    assert_eq!(report.violations, Vec::<String>::new());
    assert_eq!(report.excused.get(SLOW_CLOCK), Some(&1));
    let mut large = Story::default();
    large.acquire(0, "a", 0, 10, 1100, 1000);
    let report = run(&case(vec![], vec![-0.03]), &large.0);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
}

#[test]
fn a_legitimate_history_is_clean() {
    let mut story = Story::default();
    story
        .acquire(0, "a", 0, 10, 990, 1000)
        .changed(0, "a", None, 500)
        .release(0, 500)
        .acquire(1, "b", 600, 610, 1590, 1600)
        .changed(1, "b", Some("b"), 900)
        .store(1, "b", 900, 2000);
    story.0.push(Event::Call {
        client: 1,
        op: Op::Extend,
        key: "k".into(),
        ttl_ms: 1000,
        started: ms(899),
        ended: ms(901),
        outcome: Outcome::Extended {
            valid_until: ms(1890),
        },
    });
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    assert_eq!(report.violations, Vec::<String>::new());
    assert!(report.excused.is_empty());
}

#[test]
fn a_belief_released_the_instant_it_began_overlaps_nothing() {
    // c1's belief is empty (released at its acquire's reply); nothing is excused or reported.
    let mut story = Story::default();
    story
        .acquire(0, "a", 0, 10, 1000, 2000)
        .acquire(1, "b", 490, 500, 1500, 2500)
        .release(1, 500);
    let report = run(&case(vec![], vec![0.0, 0.0]), &story.0);
    assert_eq!(report.violations, Vec::<String>::new());
    assert!(report.excused.is_empty(), "{:?}", report.excused);
}

/// A call of `op` by client 0 that failed with `code`.
fn failed(op: Op, code: Option<ErrorCode>) -> Event {
    Event::Call {
        client: 0,
        op,
        key: "k".into(),
        ttl_ms: 1000,
        started: ms(0),
        ended: ms(10),
        outcome: Outcome::Error { code },
    }
}

#[test]
fn a_documented_error_under_faults_is_not_a_violation() {
    let report = run(
        &case(vec![], vec![0.0]),
        &[failed(Op::Acquire, Some(ErrorCode::Timeout))],
    );
    assert_eq!(report.violations, Vec::<String>::new());
}

#[test]
fn an_undocumented_error_or_a_runtime_failure_is_reported() {
    let report = run(
        &case(vec![], vec![0.0]),
        &[failed(Op::Acquire, Some(ErrorCode::InvalidKey))],
    );
    assert_one_violation(&report, "documented errors");
    assert!(report.violations[0].contains("INVALID_KEY"), "{report:?}");
    let report = run(&case(vec![], vec![0.0]), &[failed(Op::Release, None)]);
    assert_one_violation(&report, "documented errors");
    assert!(report.violations[0].contains("RUNTIME"), "{report:?}");
}

#[test]
fn a_liveness_acquire_that_fails_is_reported() {
    let report = run(
        &case(vec![], vec![0.0]),
        &[failed(Op::Liveness, Some(ErrorCode::LockTimeout))],
    );
    assert_one_violation(&report, "liveness");
}
