//! [`SmallMap`]: an ordered map over a sorted `Vec`, for the handful of configuration keys a lock
//! is given.
//!
//! It exists for size: `BTreeMap` and the stable sort its `collect` uses were a fifth of the
//! component's code. Lookups are binary searches and inserts shift a short vector.

use crate::prelude::*;

use core::borrow::Borrow;

/// Keys in ascending order; inserting a key again replaces its value (the last one given wins).
#[derive(Debug, Clone)]
pub struct SmallMap<K, V> {
    items: Vec<(K, V)>,
}

impl<K: Ord, V> SmallMap<K, V> {
    pub fn new() -> Self {
        SmallMap { items: Vec::new() }
    }

    fn position<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.items.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: K, value: V) {
        match self.position(&key) {
            Ok(at) => self.items[at].1 = value,
            Err(at) => self.items.insert(at, (key, value)),
        }
    }

    /// The value for `key`, inserting `V::default()` first when absent.
    pub fn entry_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let at = match self.position(&key) {
            Ok(at) => at,
            Err(at) => {
                self.items.insert(at, (key, V::default()));
                at
            }
        };
        &mut self.items[at].1
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.position(key).ok().map(|at| &self.items[at].1)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Entries in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.items.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Ord, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = SmallMap::new();
        for (key, value) in iter {
            map.insert(key, value);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_sorted_and_the_last_value_wins() {
        let map: SmallMap<&str, u32> = [("b", 1), ("a", 2), ("c", 3), ("a", 4)]
            .into_iter()
            .collect();
        let entries: Vec<(&str, u32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(entries, [("a", 4), ("b", 1), ("c", 3)]);
        assert_eq!(map.get("c"), Some(&3));
        assert_eq!(map.get("d"), None);
    }

    #[test]
    fn entry_or_default_inserts_once() {
        let mut map: SmallMap<u8, Vec<u8>> = SmallMap::new();
        map.entry_or_default(2).push(1);
        map.entry_or_default(1).push(2);
        map.entry_or_default(2).push(3);
        assert_eq!(map.get(&2), Some(&vec![1, 3]));
        assert_eq!(map.get(&1), Some(&vec![2]));
    }
}
