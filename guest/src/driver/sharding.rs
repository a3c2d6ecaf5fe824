//! Which server owns a key when several are configured (`options.sharding`).
//!
//! - `jump` (default): jump consistent hash (Lamping & Veach) of FNV-1a of the raw key. Adding an
//!   n-th server moves only 1/n of the keys; stable across versions.
//! - `rendezvous`: pymemcache's `HashClient` mapping, which pip-services' Python `MemcachedLock`
//!   uses: the server with the highest MurmurHash3 (32-bit, seed 0) of `"<host>:<port>-<key>"`,
//!   ties to the larger `"<host>:<port>"`, with host and port as configured. A fleet migrating
//!   from pip-services then takes each key on the server the old clients take it on, so the two
//!   exclude each other on several servers too. Unlike pymemcache, a server that is down is not
//!   dropped from the ring: its keys are unavailable, never moved to a server where a second
//!   holder could take them.

use crate::config::Endpoint;
use crate::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharding {
    #[default]
    Jump,
    Rendezvous,
}

/// Maps keys to one of a fixed list of servers.
#[derive(Debug, Clone)]
pub struct Shards {
    sharding: Sharding,
    /// `"<host>:<port>"` per server, as pymemcache names its nodes (`rendezvous` only).
    nodes: Vec<Vec<u8>>,
    servers: usize,
}

impl Shards {
    pub fn new(sharding: Sharding, endpoints: &[Endpoint]) -> Shards {
        let nodes = match sharding {
            Sharding::Jump => Vec::new(),
            Sharding::Rendezvous => endpoints
                .iter()
                .map(|e| format!("{}:{}", e.host, e.port).into_bytes())
                .collect(),
        };
        Shards {
            sharding,
            nodes,
            servers: endpoints.len(),
        }
    }

    /// The index of the server that owns `key`.
    pub fn index_for(&self, key: &[u8]) -> usize {
        match self.sharding {
            Sharding::Jump => server_index(key, self.servers),
            Sharding::Rendezvous => rendezvous(&self.nodes, key),
        }
    }
}

/// Which of `servers` owns `key` under `jump` sharding.
pub fn server_index(key: &[u8], servers: usize) -> usize {
    if servers <= 1 {
        return 0;
    }
    jump_hash(fnv1a(key), servers)
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Lamping & Veach: moves only 1/n of the keys when an n-th server is added.
fn jump_hash(mut key: u64, buckets: usize) -> usize {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as usize
}

/// pymemcache's `RendezvousHash.get_node`: the highest score wins, a tie goes to the larger name.
fn rendezvous(nodes: &[Vec<u8>], key: &[u8]) -> usize {
    let mut best: Option<(u32, usize)> = None;
    for (index, node) in nodes.iter().enumerate() {
        let mut hash = Murmur3::default();
        node.iter()
            .chain(b"-")
            .chain(key)
            .for_each(|&b| hash.push(b));
        let score = hash.finish();
        best = match best {
            Some((high, winner))
                if high > score || (high == score && nodes[winner] >= nodes[index]) =>
            {
                Some((high, winner))
            }
            _ => Some((score, index)),
        };
    }
    best.map_or(0, |(_, index)| index)
}

/// MurmurHash3 (x86, 32 bits, seed 0), fed a byte at a time: the node name, `-` and the key are
/// hashed without being copied into one buffer.
#[derive(Default)]
struct Murmur3 {
    h: u32,
    block: u32,
    len: u32,
}

impl Murmur3 {
    fn mix(k: u32) -> u32 {
        k.wrapping_mul(0xcc9e_2d51)
            .rotate_left(15)
            .wrapping_mul(0x1b87_3593)
    }

    fn push(&mut self, byte: u8) {
        self.block |= u32::from(byte) << (8 * (self.len % 4));
        self.len += 1;
        if self.len.is_multiple_of(4) {
            self.h ^= Self::mix(self.block);
            self.h = self
                .h
                .rotate_left(13)
                .wrapping_mul(5)
                .wrapping_add(0xe654_6b64);
            self.block = 0;
        }
    }

    fn finish(self) -> u32 {
        let mut h = self.h;
        if !self.len.is_multiple_of(4) {
            h ^= Self::mix(self.block);
        }
        h ^= self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hash_is_stable_and_spreads() {
        assert_eq!(jump_hash(fnv1a(b"k"), 1), 0);
        let mut counts = [0usize; 4];
        for i in 0..4000u32 {
            counts[jump_hash(fnv1a(&i.to_le_bytes()), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        // Adding a server moves keys only onto the new server.
        for i in 0..1000u32 {
            let k = fnv1a(&i.to_le_bytes());
            let (before, after) = (jump_hash(k, 4), jump_hash(k, 5));
            assert!(after == before || after == 4);
        }
    }

    fn murmur3(data: &[u8], seed: u32) -> u32 {
        let mut hash = Murmur3 {
            h: seed,
            ..Murmur3::default()
        };
        data.iter().for_each(|&b| hash.push(b));
        hash.finish()
    }

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        assert_eq!(murmur3(b"", 0), 0);
        assert_eq!(murmur3(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            murmur3(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    fn endpoints(names: &[(&str, u16)]) -> Vec<Endpoint> {
        names
            .iter()
            .map(|(host, port)| Endpoint::plain(host, *port))
            .collect()
    }

    /// Values printed by pymemcache 3.5.2's `RendezvousHash(nodes).get_node(key)` for these nodes.
    #[test]
    fn rendezvous_is_pymemcaches_mapping() {
        let shards = Shards::new(
            Sharding::Rendezvous,
            &endpoints(&[
                ("127.0.0.1", 11211),
                ("127.0.0.1", 11212),
                ("127.0.0.1", 11213),
            ]),
        );
        for (key, node) in PYMEMCACHE_MAPPING {
            assert_eq!(shards.index_for(key.as_bytes()), *node, "{key}");
        }
    }

    const PYMEMCACHE_MAPPING: &[(&str, usize)] = &[
        ("job", 0),
        ("fleet", 1),
        ("key1", 1),
        ("a", 2),
        ("b", 0),
        ("c", 1),
        ("lock:42", 0),
        ("orders/2026", 2),
        ("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0),
        ("", 2),
        ("k-1", 0),
        ("k-2", 1),
        ("k-3", 2),
        ("k-4", 1),
        ("k-5", 2),
        ("k-6", 0),
    ];
}
