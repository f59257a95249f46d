//! [`ChunkedSource`]: a shard arriving as a stream of chunks (an HTTP or S3 body, an
//! unmapped local file) decoded without copying it into a buffer first.
//!
//! The decoder asks for exactly the bytes of its next step ([`ShardDecoder::need`]). A step
//! that lies within the chunk at hand is fed as a zero-copy slice of that chunk; only a step
//! that straddles chunks (a frame longer than what is left of the chunk) is gathered into a
//! buffer of its own, its CRC computed piece by piece during that one copy, while the bytes
//! are in cache. `FramedRead` over a `StreamReader` copied every byte into its buffer first
//! and grew and split that buffer frame by frame.
//!
//! Gathering buffers come from a small pool ([`FramePool`]) that the records of a frame give
//! the buffer back to when the last of them is dropped: a fresh buffer of a few MiB per frame
//! cost a page fault (and the kernel's zeroing) for every 4 KiB of it, 7% of a stream's time
//! over HTTP.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

use super::sequential::{Budgeted, ChunkRx};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::shard::ShardDecoder;

/// How much buffer to reserve at once while a straddling frame arrives: a corrupt length
/// field does not allocate ahead of the bytes that actually come.
const GATHER_STEP: usize = 8 << 20;

/// Buffers kept for reuse, at most.
const POOLED: usize = 4;
/// Larger buffers are not kept.
const POOLED_MAX: usize = 16 << 20;

/// Gathering buffers given back by the frames that used them (see the module's text), shared
/// by the shards of one stream.
#[derive(Default)]
pub(super) struct FramePool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl FramePool {
    /// A buffer of at least `capacity` (a pooled one too small is freed: growing it would
    /// copy its old capacity for nothing).
    fn take(&self, capacity: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        match free.pop() {
            Some(buf) if buf.capacity() >= capacity => buf,
            _ => Vec::with_capacity(capacity),
        }
    }

    fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() > POOLED_MAX {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < POOLED {
            free.push(buf);
        }
    }
}

/// A gathered frame as the owner of its records' [`Bytes`]: back to the pool once the last
/// slice of it is dropped (freed if the stream is gone).
struct Pooled {
    buf: Vec<u8>,
    pool: Weak<FramePool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.buf));
        }
    }
}

/// A frame gathered across chunks, and the CRC32 of its bytes so far.
struct Gathered {
    bytes: Vec<u8>,
    crc: Option<crc32fast::Hasher>,
}

pub(super) struct ChunkedSource {
    decoder: ShardDecoder,
    rx: ChunkRx,
    /// The chunk being consumed; its share of the memory budget goes back when it is used
    /// up (the next one replaces it).
    current: Option<Budgeted>,
    gathered: Option<Gathered>,
    ready: VecDeque<Record>,
    /// The shard, in errors.
    name: String,
    pool: Arc<FramePool>,
}

impl ChunkedSource {
    pub(super) fn new(
        decoder: ShardDecoder,
        rx: ChunkRx,
        name: String,
        pool: Arc<FramePool>,
    ) -> ChunkedSource {
        ChunkedSource {
            decoder,
            rx,
            current: None,
            gathered: None,
            ready: VecDeque::new(),
            name,
            pool,
        }
    }

    pub(super) async fn next(&mut self) -> Option<Result<Record>> {
        self.step().await.transpose()
    }

    async fn step(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Ok(Some(r));
            }
            let need = self.decoder.need();
            if need == 0 {
                return self.expect_end().await.map(|()| None);
            }
            let Some(chunk) = self.current.as_mut().filter(|c| !c.bytes.is_empty()) else {
                self.current = match self.rx.recv().await {
                    Some(Ok(chunk)) => Some(chunk),
                    Some(Err(e)) => return Err(e),
                    None => return Err(self.decoder.eof_error()),
                };
                continue;
            };
            let gathered = match self.gathered.take() {
                None if chunk.bytes.len() >= need => {
                    // Within this chunk: zero-copy.
                    let step = chunk.bytes.split_to(need);
                    self.ready.extend(self.decoder.feed(step)?);
                    continue;
                }
                None => Gathered {
                    bytes: self.pool.take(need.min(GATHER_STEP)),
                    crc: (self.decoder.expects_body() && self.decoder.verifies())
                        .then(crc32fast::Hasher::new),
                },
                Some(g) => g,
            };
            let mut g = gathered;
            let take = (need - g.bytes.len()).min(chunk.bytes.len());
            let piece = chunk.bytes.split_to(take);
            if let Some(crc) = &mut g.crc {
                crc.update(&piece);
            }
            if g.bytes.capacity() - g.bytes.len() < take {
                // Up to what is still missing, a step at a time: never ahead of the bytes
                // by more than a step, whatever the length field says.
                g.bytes
                    .reserve_exact((need - g.bytes.len()).min(GATHER_STEP).max(take));
            }
            g.bytes.extend_from_slice(&piece);
            drop(piece);
            if g.bytes.len() < need {
                self.gathered = Some(g);
                continue;
            }
            let crc = g.crc.map(crc32fast::Hasher::finalize);
            let frame = Bytes::from_owner(Pooled {
                buf: g.bytes,
                pool: Arc::downgrade(&self.pool),
            });
            self.ready.extend(self.decoder.feed_with_crc(frame, crc)?);
        }
    }

    /// After the trailer: the rest of the input must be empty.
    async fn expect_end(&mut self) -> Result<()> {
        let offset = self.decoder.offset();
        let mut extra = self.current.take().map_or(0, |c| c.bytes.len());
        while extra == 0 {
            match self.rx.recv().await {
                Some(Ok(chunk)) => extra = chunk.bytes.len(),
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
        Err(
            Error::malformed(format!("bytes follow the trailer (at least {extra})"))
                .in_shard(self.name.clone())
                .at_offset(offset),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::MappedShardReader;
    use crate::record::{Image, Kind, Turn};
    use crate::shard::ShardWriter;
    use bytes::Bytes;
    use tokio::sync::mpsc;

    /// A shard of a few records whose frames are tens to hundreds of bytes long.
    fn shard() -> Bytes {
        let mut w = ShardWriter::new(Vec::new()).unwrap();
        for i in 0..4u8 {
            let png = Image::with_info(
                vec![i; 40 + 30 * i as usize].into(),
                "image/png".into(),
                1,
                1,
            );
            let out = Image::with_info(vec![i ^ 0x55; 25].into(), "image/png".into(), 2, 1);
            w.append(&Record::new(
                format!("r/{i}"),
                Kind::Sft,
                png,
                vec![Turn::new(out)],
            ))
            .unwrap();
        }
        Bytes::from(w.finish().unwrap().0)
    }

    async fn decode(pieces: Vec<Bytes>) -> Result<Vec<Record>> {
        let (tx, rx) = mpsc::unbounded_channel();
        for p in pieces {
            tx.send(Ok(Budgeted::unbudgeted(p))).unwrap();
        }
        drop(tx);
        let pool = Arc::new(FramePool::default());
        let mut source = ChunkedSource::new(ShardDecoder::new(), rx, "s".into(), pool);
        let mut out = Vec::new();
        while let Some(r) = source.next().await {
            out.push(r?);
        }
        Ok(out)
    }

    /// Split in two at every byte, and cut into pieces of every size up to 17 bytes: the
    /// records are those of a whole read, and a frame's damage is caught on either side of
    /// any boundary.
    #[tokio::test]
    async fn decodes_across_chunk_boundaries_at_every_position() {
        let bytes = shard();
        let want: Vec<Record> =
            MappedShardReader::from_bytes(bytes.clone(), "s", Default::default())
                .collect::<Result<_>>()
                .unwrap();
        assert_eq!(want.len(), 4);
        for at in 0..=bytes.len() {
            let pieces = vec![bytes.slice(..at), bytes.slice(at..)];
            assert_eq!(decode(pieces).await.unwrap(), want, "split at {at}");
        }
        for size in 1..=17 {
            let pieces = (0..bytes.len())
                .step_by(size)
                .map(|a| bytes.slice(a..(a + size).min(bytes.len())))
                .collect();
            assert_eq!(decode(pieces).await.unwrap(), want, "pieces of {size}");
        }
        // One byte flipped inside a frame body, every chunk size: refused by the CRC.
        let mut damaged = bytes.to_vec();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 1;
        let damaged = Bytes::from(damaged);
        for size in [1, 3, 64, damaged.len()] {
            let pieces = (0..damaged.len())
                .step_by(size)
                .map(|a| damaged.slice(a..(a + size).min(damaged.len())))
                .collect();
            assert!(
                decode(pieces).await.unwrap_err().is_corruption(),
                "pieces of {size}"
            );
        }
    }

    #[tokio::test]
    async fn refuses_a_cut_shard_and_bytes_after_the_trailer() {
        let bytes = shard();
        let cut = decode(vec![bytes.slice(..bytes.len() - 1)])
            .await
            .unwrap_err();
        assert!(cut.to_string().contains("ended inside"), "{cut}");
        let extra = decode(vec![bytes.clone(), Bytes::from_static(b"x")])
            .await
            .unwrap_err();
        assert!(extra.to_string().contains("follow the trailer"), "{extra}");
    }
}
