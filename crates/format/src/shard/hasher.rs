//! [`ShardHasher`]: the SHA-256 and CRC-64/NVME of a shard being written, computed on a thread
//! of its own so that hashing (about 1-2 GB/s per core; the CRC adds a few percent to that)
//! overlaps with encoding and writing instead of adding to them. Image bytes are handed over without a copy (they are `Bytes`); the small parts in
//! between (headers, tables, metadata) are batched.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::crc64::Crc64Nvme;
use crate::error::{Error, Result};

/// Pieces in flight at most, each at most [`PIECE`] bytes: bounds the hashing thread's lag,
/// and so the memory it may hold back when it falls behind (16 MiB of pieces and the one or
/// two images they are views of; the writer then waits for it). Counting whole images
/// instead let a slow hashing thread hold sixteen of them: 128 MiB of 8 MiB images.
const IN_FLIGHT: usize = 16;
/// The largest piece handed over: an image is sent as views of at most this many bytes.
const PIECE: usize = 1 << 20;
/// Small writes are batched up to this size before they are handed over.
const BATCH: usize = 64 << 10;

pub(crate) enum ShardHasher {
    Threaded {
        tx: SyncSender<Bytes>,
        thread: JoinHandle<ShardDigests>,
        small: Vec<u8>,
    },
    /// Where no thread can be started: hashed in line, as before (boxed: the CRC's state
    /// holds its tables' keys, some 300 bytes).
    Inline(Box<(Sha256, Crc64Nvme)>),
}

/// The digests of a whole shard file, as its manifest entry records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardDigests {
    pub sha256: [u8; 32],
    pub crc64nvme: u64,
}

fn hash_all(rx: Receiver<Bytes>) -> ShardDigests {
    let mut h = Sha256::new();
    let mut crc = Crc64Nvme::new();
    for piece in rx {
        h.update(&piece);
        crc.update(&piece);
    }
    ShardDigests {
        sha256: h.finalize().into(),
        crc64nvme: crc.finalize(),
    }
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
            Err(_) => ShardHasher::Inline(Box::new((Sha256::new(), Crc64Nvme::new()))),
        }
    }

    /// Hashes a copy of `bytes` (small parts).
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            ShardHasher::Inline(both) => {
                both.0.update(bytes);
                both.1.update(bytes);
            }
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
            ShardHasher::Inline(both) => {
                both.0.update(bytes);
                both.1.update(bytes);
            }
            ShardHasher::Threaded { .. } => {
                self.send_small();
                let mut at = 0;
                while at < bytes.len() {
                    let end = bytes.len().min(at + PIECE);
                    self.send(bytes.slice(at..end));
                    at = end;
                }
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

    /// The digests of everything hashed.
    pub fn finalize(mut self) -> Result<ShardDigests> {
        self.send_small();
        match self {
            ShardHasher::Inline(both) => Ok(ShardDigests {
                sha256: both.0.finalize().into(),
                crc64nvme: both.1.finalize(),
            }),
            ShardHasher::Threaded { tx, thread, .. } => {
                drop(tx); // the thread's loop ends, and it returns the digest
                thread
                    .join()
                    .map_err(|_| Error::bug("the shard's hashing thread failed"))
            }
        }
    }
}
