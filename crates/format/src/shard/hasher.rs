//! [`ShardHasher`]: the SHA-256 of a shard being written, computed on a thread of its own so
//! that hashing (about 1-2 GB/s per core) overlaps with encoding and writing instead of adding
//! to them. Image bytes are handed over without a copy (they are `Bytes`); the small parts in
//! between (headers, tables, metadata) are batched.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Pieces in flight at most: bounds the memory the hashing thread may hold back when it
/// falls behind (the writer then waits for it).
const IN_FLIGHT: usize = 16;
/// Small writes are batched up to this size before they are handed over.
const BATCH: usize = 64 << 10;

pub(crate) enum ShardHasher {
    Threaded {
        tx: SyncSender<Bytes>,
        thread: JoinHandle<[u8; 32]>,
        small: Vec<u8>,
    },
    /// Where no thread can be started: hashed in line, as before.
    Inline(Sha256),
}

fn hash_all(rx: Receiver<Bytes>) -> [u8; 32] {
    let mut h = Sha256::new();
    for piece in rx {
        h.update(&piece);
    }
    h.finalize().into()
}

impl ShardHasher {
    pub fn new() -> ShardHasher {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        match std::thread::Builder::new()
            .name("editshard-shard-sha256".into())
            .spawn(move || hash_all(rx))
        {
            Ok(thread) => ShardHasher::Threaded {
                tx,
                thread,
                small: Vec::new(),
            },
            Err(_) => ShardHasher::Inline(Sha256::new()),
        }
    }

    /// Hashes a copy of `bytes` (small parts).
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            ShardHasher::Inline(h) => h.update(bytes),
            ShardHasher::Threaded { small, .. } => {
                small.extend_from_slice(bytes);
                if small.len() >= BATCH {
                    self.send_small();
                }
            }
        }
    }

    /// Hashes `bytes` without copying them (image data).
    pub fn update_shared(&mut self, bytes: &Bytes) {
        match self {
            ShardHasher::Inline(h) => h.update(bytes),
            ShardHasher::Threaded { .. } => {
                self.send_small();
                self.send(bytes.clone());
            }
        }
    }

    fn send_small(&mut self) {
        if let ShardHasher::Threaded { small, .. } = self
            && !small.is_empty()
        {
            let piece = Bytes::from(std::mem::take(small));
            self.send(piece);
        }
    }

    fn send(&mut self, piece: Bytes) {
        if let ShardHasher::Threaded { tx, .. } = self {
            // A send fails only if the thread is gone (it panicked): `finalize` reports it.
            let _ = tx.send(piece);
        }
    }

    /// The digest of everything hashed.
    pub fn finalize(mut self) -> Result<[u8; 32]> {
        self.send_small();
        match self {
            ShardHasher::Inline(h) => Ok(h.finalize().into()),
            ShardHasher::Threaded { tx, thread, .. } => {
                drop(tx); // the thread's loop ends, and it returns the digest
                thread
                    .join()
                    .map_err(|_| Error::bug("the shard's SHA-256 thread failed"))
            }
        }
    }
}
