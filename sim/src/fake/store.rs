//! The fake's item store: memcached's expiry rules, CAS counter, LRU order and memory cap.
//!
//! Time is memcached's `current_time`: whole seconds since the process started, advanced by a
//! once-a-second tick. An item stored with a relative ttl `n` at `current_time = c` expires once
//! `current_time >= c + n`, so it lives between n−1 and n seconds, as on a real server.

use std::collections::BTreeMap;

/// memcached reads larger exptimes as absolute unix times.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;
/// Per-item overhead counted against the memory cap (memcached's item header is ~50 bytes).
pub const ITEM_OVERHEAD: usize = 56;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub value: Vec<u8>,
    pub client_flags: u32,
    /// `current_time` at which the item is gone; 0 = never.
    pub exptime: u64,
    pub cas: u64,
    /// Stored through a base64 (`b`) key: `k` returns it encoded, with a ` b` flag.
    pub key_binary: bool,
    lru: u64,
}

/// Why a store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Memory cap reached and eviction disabled (`-M`), or the item is larger than the cap.
    OutOfMemory,
}

#[derive(Debug)]
pub struct Store {
    items: BTreeMap<Vec<u8>, Item>,
    /// LRU order: access sequence → key.
    lru: BTreeMap<u64, Vec<u8>>,
    next_lru: u64,
    cas_counter: u64,
    used: usize,
    memory_limit: usize,
    evict: bool,
    /// Keys evicted for memory, in order (for fault accounting).
    pub evictions: u64,
}

impl Store {
    pub fn new(memory_limit: usize, evict: bool) -> Self {
        Store {
            items: BTreeMap::new(),
            lru: BTreeMap::new(),
            next_lru: 0,
            cas_counter: 0,
            used: 0,
            memory_limit,
            evict,
            evictions: 0,
        }
    }

    /// memcached's `realtime()`: a client exptime to an absolute `current_time`, 0 = never.
    pub fn realtime(exptime: i64, now: u64, process_started: u64) -> u64 {
        if exptime == 0 {
            0
        } else if exptime < 0 {
            // "Immediately expired": any time at or before now.
            1
        } else if exptime > REALTIME_MAXDELTA {
            let exptime = exptime as u64;
            if exptime <= process_started {
                1
            } else {
                exptime - process_started
            }
        } else {
            exptime as u64 + now
        }
    }

    fn size(key: &[u8], value: &[u8]) -> usize {
        key.len() + value.len() + ITEM_OVERHEAD
    }

    /// The live item under `key`, touching its LRU position. Expired items are removed lazily.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Item> {
        self.expire(key, now);
        let lru = self.bump_lru(key)?;
        let item = self.items.get_mut(key)?;
        self.lru.remove(&item.lru);
        item.lru = lru;
        self.lru.insert(lru, key.to_vec());
        Some(item)
    }

    /// Peek without touching LRU.
    pub fn peek(&mut self, key: &[u8], now: u64) -> Option<&Item> {
        self.expire(key, now);
        self.items.get(key)
    }

    fn bump_lru(&mut self, key: &[u8]) -> Option<u64> {
        if !self.items.contains_key(key) {
            return None;
        }
        self.next_lru += 1;
        Some(self.next_lru)
    }

    fn expire(&mut self, key: &[u8], now: u64) {
        if let Some(item) = self.items.get(key)
            && item.exptime != 0
            && item.exptime <= now
        {
            self.remove(key);
        }
    }

    /// Stores an item (replacing any), with a fresh CAS. Evicts LRU items to make room.
    pub fn put(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        client_flags: u32,
        exptime: u64,
    ) -> Result<u64, StoreError> {
        self.put_item(key, value, client_flags, exptime, false)
    }

    /// [`Store::put`], remembering whether the key arrived base64-encoded.
    pub fn put_item(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        client_flags: u32,
        exptime: u64,
        key_binary: bool,
    ) -> Result<u64, StoreError> {
        let size = Self::size(key, &value);
        if size > self.memory_limit {
            return Err(StoreError::OutOfMemory);
        }
        self.remove(key);
        while self.used + size > self.memory_limit {
            if !self.evict {
                return Err(StoreError::OutOfMemory);
            }
            let Some((_, victim)) = self.lru.pop_first() else {
                return Err(StoreError::OutOfMemory);
            };
            self.remove(&victim);
            self.evictions += 1;
        }
        self.cas_counter += 1;
        self.next_lru += 1;
        let cas = self.cas_counter;
        self.used += size;
        self.lru.insert(self.next_lru, key.to_vec());
        self.items.insert(
            key.to_vec(),
            Item {
                value,
                client_flags,
                exptime,
                cas,
                key_binary,
                lru: self.next_lru,
            },
        );
        Ok(cas)
    }

    /// Sets a new exptime (touch): the CAS does not change.
    pub fn touch(&mut self, key: &[u8], exptime: u64, now: u64) -> bool {
        self.expire(key, now);
        match self.items.get_mut(key) {
            Some(item) => {
                item.exptime = exptime;
                true
            }
            None => false,
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Item> {
        let item = self.items.remove(key)?;
        self.lru.remove(&item.lru);
        self.used -= Self::size(key, &item.value);
        Some(item)
    }

    /// `flush_all`: every item gone (CAS counter continues).
    pub fn flush(&mut self) {
        self.items.clear();
        self.lru.clear();
        self.used = 0;
    }

    /// Evicts every item (the simulation's "memory pressure" fault); returns how many.
    /// Every item's key and value (expired ones too: memcached drops those lazily).
    pub fn contents(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.items
            .iter()
            .map(|(key, item)| (key.clone(), item.value.clone()))
            .collect()
    }

    pub fn evict_all(&mut self) -> usize {
        let n = self.items.len();
        self.flush();
        self.evictions += n as u64;
        n
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_lives_between_n_minus_one_and_n_ticks() {
        let mut s = Store::new(1 << 20, true);
        let exp = Store::realtime(2, 100, 0);
        s.put(b"k", b"v".to_vec(), 0, exp).expect("stored");
        assert!(s.get(b"k", 101).is_some());
        assert!(s.get(b"k", 102).is_none());
        assert_eq!(Store::realtime(-1, 100, 0), 1);
        assert_eq!(Store::realtime(REALTIME_MAXDELTA + 1, 100, 10_000_000), 1);
    }

    #[test]
    fn lru_eviction_and_no_evict_mode() {
        let cap = 3 * (1 + 10 + ITEM_OVERHEAD);
        let mut s = Store::new(cap, true);
        for k in [b"a", b"b", b"c"] {
            s.put(k, vec![0; 10], 0, 0).expect("fits");
        }
        s.get(b"a", 0);
        s.put(b"d", vec![0; 10], 0, 0).expect("evicts b");
        assert!(s.peek(b"b", 0).is_none() && s.peek(b"a", 0).is_some());
        let mut full = Store::new(cap, false);
        for k in [b"a", b"b", b"c"] {
            full.put(k, vec![0; 10], 0, 0).expect("fits");
        }
        assert_eq!(
            full.put(b"d", vec![0; 10], 0, 0),
            Err(StoreError::OutOfMemory)
        );
    }

    #[test]
    fn cas_increments_per_store_only() {
        let mut s = Store::new(1 << 20, true);
        assert_eq!(s.put(b"a", vec![], 0, 0), Ok(1));
        assert!(s.touch(b"a", 0, 0));
        assert_eq!(s.peek(b"a", 0).map(|i| i.cas), Some(1));
        assert_eq!(s.put(b"a", vec![], 0, 0), Ok(2));
    }
}
