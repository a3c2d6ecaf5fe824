//! Runs many generated cases with proptest: a failing case is shrunk to a minimal schedule.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use memlock_host::Runtime;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::schedule::{self, Case, Shape};
use crate::world;

#[derive(Default)]
/// Totals over a run of cases; `failure` is the shrunk failing case and its first violation.
pub struct Summary {
    /// Cases run up to and including the first failing one.
    pub cases: u32,
    /// Runs spent shrinking a failing case.
    pub shrink_runs: u32,
    pub simulated: Duration,
    pub wall: Duration,
    pub acquisitions: usize,
    /// Apparent violations excused by a stated assumption, per reason.
    pub excused: BTreeMap<&'static str, usize>,
    pub stale_writes_rejected: usize,
    pub faults: BTreeMap<&'static str, usize>,
    /// Per fault kind active when an acquire began ("none": no fault): (acquires, acquired).
    pub attempts: BTreeMap<&'static str, (usize, usize)>,
    pub failure: Option<(Case, String)>,
    /// Wall time from the start of the run to the end of the first failing case.
    pub first_failure_after: Option<Duration>,
    failure_seen: bool,
}

/// Runs `cases` cases of `shape` from the master `seed`; `after_each` sees the running totals
/// after every run (case or shrink run).
pub fn run_cases(
    seed: u64,
    cases: u32,
    shape: &Shape,
    runtime: &'static Runtime,
    after_each: &mut dyn FnMut(&Summary),
) -> Summary {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let summary = std::cell::RefCell::new(Summary::default());
    let started = Instant::now();
    let after_each = std::cell::RefCell::new(after_each);
    let result = runner.run(&schedule::cases(shape), |case| {
        let run = world::run(&case, runtime);
        let mut s = summary.borrow_mut();
        s.wall = started.elapsed();
        if s.failure_seen {
            s.shrink_runs += 1;
        } else {
            s.cases += 1;
        }
        // Totals describe the cases; shrink runs are only counted.
        if !s.failure_seen {
            s.simulated += run.simulated;
            s.acquisitions += run.report.acquisitions;
            for (reason, n) in &run.report.excused {
                *s.excused.entry(reason).or_default() += n;
            }
            s.stale_writes_rejected += run.report.stale_writes_rejected;
            for (k, n) in run.faults {
                *s.faults.entry(k).or_default() += n;
            }
            for (k, (tried, won)) in &run.report.attempts {
                let entry = s.attempts.entry(k).or_default();
                entry.0 += tried;
                entry.1 += won;
            }
        }
        if !run.report.violations.is_empty() && !s.failure_seen {
            // Every run from here on is proptest shrinking this case.
            s.failure_seen = true;
            s.first_failure_after = Some(started.elapsed());
        }
        (after_each.borrow_mut())(&s);
        match run.report.violations.first() {
            None => Ok(()),
            Some(v) => Err(TestCaseError::fail(format!(
                "{v} ({} violations)",
                run.report.violations.len()
            ))),
        }
    });
    let mut summary = summary.into_inner();
    summary.wall = started.elapsed();
    if let Err(TestError::Fail(message, case)) = result {
        summary.failure = Some((case, message.to_string()));
    } else if let Err(e) = result {
        summary.failure = Some((
            Case {
                seed,
                clients: 0,
                servers: 0,
                mode: shape.mode,
                drift: Vec::new(),
                faults: Vec::new(),
            },
            e.to_string(),
        ));
    }
    summary
}

impl Summary {
    /// `kind=acquired/acquires (percent)` per fault kind active when an acquire began.
    pub fn success_rates(&self) -> String {
        self.attempts
            .iter()
            .map(|(kind, (tried, won))| {
                format!(
                    "{kind}={won}/{tried} ({:.0}%)",
                    100.0 * *won as f64 / (*tried).max(1) as f64
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}
