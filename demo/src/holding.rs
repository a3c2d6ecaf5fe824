//! What the demo checks from the critical sections' own reports: that no two workers held the
//! key at once, and that every hand-off got a larger fencing token.
//!
//! The reports come from the command `memlock run` starts (it runs only while the lease is held,
//! and the lease is released only after it exits), so a held interval reported here lies inside
//! the lease's: an overlap here is an overlap of the lock.

/// One worker's critical section, in wall-clock microseconds (one machine, one clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub worker: u32,
    pub from_us: u64,
    /// `None`: never seen to end (the worker is still running, or vanished without a report).
    pub until_us: Option<u64>,
    pub fencing_token: Option<u128>,
}

/// Every pair of critical sections that overlapped, as sentences.
pub fn overlaps(holdings: &[Holding]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, a) in holdings.iter().enumerate() {
        for b in &holdings[i + 1..] {
            let a_before_b = a.until_us.is_some_and(|end| end <= b.from_us);
            let b_before_a = b.until_us.is_some_and(|end| end <= a.from_us);
            if !a_before_b && !b_before_a {
                found.push(format!(
                    "workers {} and {} held the key at once",
                    a.worker, b.worker
                ));
            }
        }
    }
    found
}

/// Hand-offs whose fencing token did not grow (or is missing), as sentences.
pub fn token_regressions(holdings: &[Holding]) -> Vec<String> {
    let mut in_order: Vec<&Holding> = holdings.iter().collect();
    in_order.sort_by_key(|h| h.from_us);
    let mut found: Vec<String> = in_order
        .iter()
        .filter(|h| h.fencing_token.is_none())
        .map(|h| format!("worker {} reported no fencing token", h.worker))
        .collect();
    for pair in in_order.windows(2) {
        if let [earlier, later] = pair
            && let (Some(a), Some(b)) = (earlier.fencing_token, later.fencing_token)
            && b <= a
        {
            found.push(format!(
                "worker {} got fencing token {b} after worker {} had {a}",
                later.worker, earlier.worker
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(worker: u32, from_us: u64, until_us: Option<u64>, token: u128) -> Holding {
        Holding {
            worker,
            from_us,
            until_us,
            fencing_token: Some(token),
        }
    }

    #[test]
    fn back_to_back_sections_with_growing_tokens_pass() {
        let sections = [
            held(1, 0, Some(10), 1),
            held(2, 10, Some(20), 2),
            held(3, 25, Some(30), 7),
        ];
        assert!(overlaps(&sections).is_empty());
        assert!(token_regressions(&sections).is_empty());
    }

    #[test]
    fn an_overlap_is_found_even_between_sections_that_are_not_neighbours() {
        let sections = [
            held(1, 0, Some(100), 1),
            held(2, 10, Some(20), 2),
            held(3, 30, Some(40), 3),
        ];
        assert_eq!(
            overlaps(&sections),
            [
                "workers 1 and 2 held the key at once",
                "workers 1 and 3 held the key at once"
            ]
        );
    }

    #[test]
    fn a_section_never_seen_to_end_overlaps_everything_after_it() {
        let sections = [held(1, 0, None, 1), held(2, 1_000_000, Some(1_000_001), 2)];
        assert_eq!(
            overlaps(&sections),
            ["workers 1 and 2 held the key at once"]
        );
    }

    #[test]
    fn a_token_that_does_not_grow_is_reported() {
        let sections = [
            held(2, 10, Some(20), 5),
            held(1, 0, Some(10), 5),
            held(3, 20, Some(30), 4),
        ];
        assert_eq!(
            token_regressions(&sections),
            [
                "worker 2 got fencing token 5 after worker 1 had 5",
                "worker 3 got fencing token 4 after worker 2 had 5"
            ]
        );
        let missing = [Holding {
            fencing_token: None,
            ..held(1, 0, Some(1), 0)
        }];
        assert_eq!(
            token_regressions(&missing),
            ["worker 1 reported no fencing token"]
        );
    }
}
