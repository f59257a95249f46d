//! [`IdHashes`]: the record ids of a whole dataset in bounded memory, to enforce that ids are
//! unique across shards (spec section 5.1). Each id is kept as the first 128 bits of its
//! SHA-256 with a small value (where it was seen), about 40 bytes per id whatever its length.
//! A hit is a *probable* duplicate: the caller confirms it against the id stored where the
//! value points (an index, a shard file) before reporting it, so a hash collision can never
//! turn into a false error.
//!
//! ```
//! use editshard_format::id_set::IdHashes;
//! let mut ids = IdHashes::default();
//! assert_eq!(ids.insert("a", 0), None);
//! assert_eq!(ids.insert("b", 1), None);
//! assert_eq!(ids.insert("a", 2), Some(0)); // seen at 0: confirm there
//! assert_eq!(ids.len(), 2);
//! ```

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// Ids by hash, each with where it was first seen.
#[derive(Debug, Clone)]
pub struct IdHashes<V> {
    seen: HashMap<u128, V>,
}

impl<V> Default for IdHashes<V> {
    fn default() -> Self {
        IdHashes {
            seen: HashMap::new(),
        }
    }
}

fn key(id: &str) -> u128 {
    let d = Sha256::digest(id.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    u128::from_le_bytes(k)
}

impl<V: Copy> IdHashes<V> {
    /// Records `id` at `at`, unless an id with the same hash was seen: then returns where
    /// (and keeps the first), for the caller to confirm.
    pub fn insert(&mut self, id: &str, at: V) -> Option<V> {
        match self.seen.entry(key(id)) {
            std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(at);
                None
            }
        }
    }

    /// Where an id with the same hash as `id` was seen, if one was.
    pub fn get(&self, id: &str) -> Option<V> {
        self.seen.get(&key(id)).copied()
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
