//! One round of the demo: the workers' reports as they arrive, printed as a timeline and folded
//! into what [`holding`](crate::holding) checks; and the worker processes, killed if the demo
//! gives up, so nothing outlives it.

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Timeline;
use crate::holding::{self, Holding};
use crate::workers::{self, Report, Said};

pub struct Round<'t> {
    t: &'t Timeline,
    sender: Sender<Report>,
    reports: Receiver<Report>,
    deadline: Instant,
    holdings: BTreeMap<u32, Holding>,
    /// Pipes closed per worker: two means it and its command are gone.
    closed: BTreeMap<u32, u8>,
    problems: Vec<String>,
}

impl<'t> Round<'t> {
    pub fn new(t: &'t Timeline, limit: Duration) -> Round<'t> {
        let (sender, reports) = channel();
        Round {
            t,
            sender,
            reports,
            deadline: Instant::now() + limit,
            holdings: BTreeMap::new(),
            closed: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    pub fn sender(&self) -> &Sender<Report> {
        &self.sender
    }

    pub fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Worker `w`'s command has started its critical section.
    pub fn entered(&self, worker: u32) -> bool {
        self.holdings.contains_key(&worker)
    }

    /// Worker `w` and its command are gone.
    pub fn finished(&self, worker: u32) -> bool {
        self.closed.get(&worker) == Some(&2)
    }

    /// Takes reports until `done` holds; an error with what is known if the round's time runs out.
    pub fn wait_until(&mut self, done: impl Fn(&Round) -> bool) -> Result<(), Vec<String>> {
        while !done(self) {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(report) => self.take(report),
                Err(RecvTimeoutError::Timeout) => {
                    self.problems
                        .push("the round did not finish in time".into());
                    return Err(std::mem::take(&mut self.problems));
                }
                Err(RecvTimeoutError::Disconnected) => unreachable!("the round holds a sender"),
            }
        }
        Ok(())
    }

    fn take(&mut self, report: Report) {
        let worker = report.worker;
        let value = match report.said {
            Said::Json(value) => value,
            Said::Text(text) => return self.t.say(&format!("worker {worker}: {text}")),
            Said::Closed => {
                let closed = self.closed.entry(worker).or_default();
                *closed += 1;
                // A section never reported left ended, at the latest, when its output closed.
                if *closed == 2
                    && let Some(holding) = self.holdings.get_mut(&worker)
                {
                    holding.until_us.get_or_insert(report.at_us);
                }
                return;
            }
        };
        let text = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default();
        let number = |name: &str| value.get(name).and_then(Value::as_u64);
        match (text("section"), text("event"), text("status")) {
            ("entered", _, _) => {
                let holding = Holding {
                    worker,
                    from_us: number("at_us").unwrap_or(report.at_us),
                    until_us: None,
                    fencing_token: text("fencing_token").parse().ok(),
                };
                self.holdings.insert(worker, holding);
            }
            ("leaving", _, _) => {
                if let Some(holding) = self.holdings.get_mut(&worker) {
                    holding.until_us = number("at_us");
                }
            }
            (_, "acquired", _) => self.t.say(&format!(
                "worker {worker} ACQUIRED the key (fencing token {}, waited {:.2} s)",
                text("fencing_token"),
                number("waited_ms").unwrap_or(0) as f64 / 1000.0
            )),
            (_, "exited", _) if value.get("released") == Some(&Value::Bool(true)) => {
                self.t
                    .say(&format!("worker {worker} is done and released the key"));
            }
            (_, _, "error") => {
                let problem = format!(
                    "worker {worker}: memlock failed: {} {}",
                    text("code"),
                    text("message")
                );
                self.t.say(&problem);
                self.problems.push(problem);
            }
            _ => {
                let problem = format!("worker {worker}: unexpected report {value}");
                self.t.say(&problem);
                self.problems.push(problem);
            }
        }
    }

    /// The fencing tokens in the order the sections started.
    pub fn tokens_in_order(&self) -> Vec<String> {
        let mut sections: Vec<&Holding> = self.holdings.values().collect();
        sections.sort_by_key(|h| h.from_us);
        sections
            .iter()
            .map(|h| h.fencing_token.map_or("?".into(), |t| t.to_string()))
            .collect()
    }

    /// Everything wrong with the round: overlaps, tokens, missing sections, reported problems.
    pub fn check(mut self, sections: usize) -> Result<(), Vec<String>> {
        let holdings: Vec<Holding> = self.holdings.values().cloned().collect();
        self.problems.extend(holding::overlaps(&holdings));
        self.problems.extend(holding::token_regressions(&holdings));
        if holdings.len() != sections {
            self.problems.push(format!(
                "{} critical sections ran, expected {sections}",
                holdings.len()
            ));
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems)
        }
    }
}

/// The worker processes; whatever is still running when this is dropped is killed.
#[derive(Default)]
pub struct Running(Vec<(u32, Child)>);

impl Running {
    pub fn add(&mut self, worker: u32, child: Child) {
        self.0.push((worker, child));
    }

    /// SIGKILL to worker `w`'s memlock, and reaps it.
    pub fn kill(&mut self, worker: u32) {
        if let Some(index) = self.0.iter().position(|(w, _)| *w == worker) {
            let (_, mut child) = self.0.remove(index);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Reaps every worker, recording the ones that did not succeed.
    pub fn wait_all(&mut self, round: &mut Round) {
        for (worker, mut child) in self.0.drain(..) {
            if let Some(problem) = workers::failure(worker, child.wait()) {
                round.problem(problem);
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
