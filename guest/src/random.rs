//! Random words for owner tokens and jitter, drawn from the host in batches.
//!
//! An acquire needs 16 random bytes (its owner token); one call across the component boundary per
//! four acquires is cheaper than two per acquire. The source is a parameter so that natively the
//! pool is tested with sources that fail.

/// Bytes fetched per draw from the source.
pub const RANDOM_BATCH: usize = 64;

pub struct RandomPool {
    bytes: [u8; RANDOM_BATCH],
    used: usize,
}

impl Default for RandomPool {
    fn default() -> Self {
        RandomPool {
            bytes: [0; RANDOM_BATCH],
            // Empty: the first draw fills it.
            used: RANDOM_BATCH,
        }
    }
}

/// The host's random source failed: no owner token can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomUnavailable;

impl RandomPool {
    /// The next 8 unused bytes, refilling from `fill` when the batch is spent. A failed fill
    /// leaves the pool empty and is an error: an owner token is fresh randomness or nothing (two
    /// owners sharing stale or zero bytes could release each other's locks).
    pub fn next_u64<E>(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<u64, RandomUnavailable> {
        if self.used + 8 > RANDOM_BATCH {
            fill(&mut self.bytes).map_err(|_| RandomUnavailable)?;
            self.used = 0;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.bytes[self.used..self.used + 8]);
        // Each byte is handed out once.
        self.used += 8;
        Ok(u64::from_le_bytes(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(counter: &mut u8) -> impl FnOnce(&mut [u8]) -> Result<(), ()> + '_ {
        move |buf| {
            for b in buf.iter_mut() {
                *counter = counter.wrapping_add(1);
                *b = *counter;
            }
            Ok(())
        }
    }

    #[test]
    fn every_byte_is_handed_out_once() {
        let (mut pool, mut counter) = (RandomPool::default(), 0u8);
        let words: std::vec::Vec<u64> = (0..RANDOM_BATCH / 8 * 3)
            .map(|_| pool.next_u64(counting(&mut counter)).expect("fills"))
            .collect();
        let mut unique = words.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), words.len());
    }

    #[test]
    fn a_failed_draw_is_an_error_never_stale_or_zero_bytes() {
        let (mut pool, mut counter) = (RandomPool::default(), 0u8);
        let first: std::vec::Vec<u64> = (0..RANDOM_BATCH / 8)
            .map(|_| pool.next_u64(counting(&mut counter)).expect("fills"))
            .collect();
        // The batch is spent; the source now fails, and keeps failing until it recovers.
        for _ in 0..3 {
            assert_eq!(
                pool.next_u64(|_: &mut [u8]| Err::<(), ()>(())),
                Err(RandomUnavailable)
            );
        }
        let recovered = pool.next_u64(counting(&mut counter)).expect("fills");
        assert!(!first.contains(&recovered), "fresh bytes after recovery");
        let mut fresh = RandomPool::default();
        assert_eq!(
            fresh.next_u64(|_: &mut [u8]| Err::<(), ()>(())),
            Err(RandomUnavailable),
            "an empty pool hands out nothing when the source fails"
        );
    }
}
