//! The memory that image requests may hold at once, shared by all of them: the image bytes a
//! request has fetched (until its response is sent) and, for a thumbnail, what decoding the
//! image takes, estimated from the image's header before anything is decoded.
//!
//! A request reserves its bytes before it fetches or decodes. When the budget is spent, it
//! waits in line (a fair queue) for at most [`QUEUE_WAIT`]; a request that cannot get its
//! bytes in that time, or that finds [`MAX_WAITING`] requests already in line, is answered
//! `503 Service Unavailable` with `Retry-After`. The server itself never holds more than the
//! budget for images, whatever the number of requests.
//!
//! Thumbnails are made in [`DecodeSlots`] as well, one per core: decoding is CPU work, so more
//! at once would not finish sooner, and a request waiting for a slot holds no memory (were
//! every waiting request holding its fetched bytes while it waits for the memory to decode
//! them, the bytes of many waiters could take up the budget that the decode in front of them
//! needs).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The default budget: one decode of a very large image fits (a 13000 x 13000 RGB PNG takes
/// 507 MB), or dozens of ordinary ones at a time.
pub const DEFAULT_IMAGE_MEMORY: u64 = 1 << 30;
/// Longest a request waits in line for memory before it is answered 503.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);
/// Most requests waiting in line; more are answered 503 at once.
pub const MAX_WAITING: usize = 256;
/// What a 503 asks the client to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Permits are KiB: a tokio semaphore counts `u32` permits per acquisition.
const UNIT: u64 = 1024;

/// Why a reservation was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The budget is spent and stayed spent (or the line is full): try again later (503).
    Busy,
    /// More than the whole budget: it can never be served (422).
    TooLarge { need: u64, budget: u64 },
}

impl Refused {
    pub fn message(&self, what: &str) -> String {
        match self {
            Refused::Busy => format!(
                "{what}: the server is busy with other images (its image memory is in use); \
                 try again in {RETRY_AFTER_SECS} s"
            ),
            Refused::TooLarge { need, budget } => format!(
                "{what} needs about {} of memory, more than the server's image budget of {} \
                 (editshard view --image-memory)",
                editshard::units::human_bytes(*need),
                editshard::units::human_bytes(*budget)
            ),
        }
    }
}

/// The shared budget.
pub struct ImageMemory {
    budget: u64,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Most bytes held at once so far (for tests and diagnostics).
    peak: AtomicU64,
    held: AtomicU64,
}

/// Bytes held from the budget; given back when dropped.
pub struct Held {
    memory: Arc<ImageMemory>,
    permit: Option<OwnedSemaphorePermit>,
    bytes: u64,
}

impl ImageMemory {
    pub fn new(budget: u64) -> Arc<ImageMemory> {
        let units = (budget / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64 / 2);
        Arc::new(ImageMemory {
            budget: units * UNIT,
            permits: Arc::new(Semaphore::new(units as usize)),
            waiting: AtomicUsize::new(0),
            peak: AtomicU64::new(0),
            held: AtomicU64::new(0),
        })
    }

    /// The budget, in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Most bytes held at once since the server started.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Reserves `bytes`, waiting in line until `deadline` at most.
    pub async fn reserve(self: &Arc<Self>, bytes: u64, deadline: Instant) -> Result<Held, Refused> {
        let mut held = Held {
            memory: self.clone(),
            permit: None,
            bytes: 0,
        };
        held.grow(bytes, deadline).await?;
        Ok(held)
    }

    fn units(&self, bytes: u64) -> Result<u32, Refused> {
        let units = bytes.div_ceil(UNIT).max(1);
        if units * UNIT > self.budget {
            return Err(Refused::TooLarge {
                need: bytes,
                budget: self.budget,
            });
        }
        u32::try_from(units).map_err(|_| Refused::TooLarge {
            need: bytes,
            budget: self.budget,
        })
    }

    fn note(&self, delta: i64) {
        if delta >= 0 {
            let now = self.held.fetch_add(delta as u64, Ordering::Relaxed) + delta as u64;
            self.peak.fetch_max(now, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }
}

impl Held {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds `more` bytes as well (all of them together must fit the budget), waiting in line
    /// until `deadline` at most.
    pub async fn grow(&mut self, more: u64, deadline: Instant) -> Result<(), Refused> {
        let memory = self.memory.clone();
        let units = memory.units(self.bytes + more)? - self.units_held();
        if units == 0 {
            self.bytes += more;
            return Ok(());
        }
        let permit = match memory.permits.clone().try_acquire_many_owned(units) {
            Ok(p) => p,
            Err(_) => {
                if memory.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
                    memory.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(Refused::Busy);
                }
                let acquired = tokio::time::timeout_at(
                    deadline,
                    memory.permits.clone().acquire_many_owned(units),
                )
                .await;
                memory.waiting.fetch_sub(1, Ordering::AcqRel);
                match acquired {
                    Ok(Ok(p)) => p,
                    // Timed out, or the semaphore closed (it never is).
                    _ => return Err(Refused::Busy),
                }
            }
        };
        match &mut self.permit {
            Some(p) => p.merge(permit),
            None => self.permit = Some(permit),
        }
        memory.note(i64::from(units) * UNIT as i64);
        self.bytes += more;
        Ok(())
    }

    fn units_held(&self) -> u32 {
        self.permit.as_ref().map_or(0, |p| p.num_permits() as u32)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let units = self.units_held();
        self.memory.note(-(i64::from(units) * UNIT as i64));
        // The permit goes back to the semaphore as it drops.
    }
}

/// The thumbnail decodes that may run at once; requests wait in line (until their deadline,
/// [`MAX_WAITING`] at most) for one.
pub struct DecodeSlots {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl DecodeSlots {
    /// One slot per core the process may use (at least 2).
    pub fn per_core() -> DecodeSlots {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        DecodeSlots {
            slots: Arc::new(Semaphore::new(n)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A slot, held until the permit is dropped.
    pub async fn acquire(&self, deadline: Instant) -> Result<OwnedSemaphorePermit, Refused> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Busy);
        }
        let acquired = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match acquired {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Refused::Busy),
        }
    }
}

/// The deadline of a request that starts waiting now.
pub fn deadline() -> Instant {
    Instant::now() + QUEUE_WAIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_never_exceed_the_budget_and_waiters_are_served_or_refused() {
        let memory = ImageMemory::new(10 * UNIT);
        let a = memory.reserve(6 * UNIT, deadline()).await.unwrap();
        assert_eq!(memory.held(), 6 * UNIT);
        // Does not fit now, and is refused when its deadline passes.
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(
            memory.reserve(6 * UNIT, soon).await.err(),
            Some(Refused::Busy)
        );
        // Fits once `a` is given back.
        let waiter = tokio::spawn({
            let memory = memory.clone();
            async move {
                memory
                    .reserve(6 * UNIT, deadline())
                    .await
                    .map(|h| h.bytes())
            }
        });
        tokio::task::yield_now().await;
        drop(a);
        assert_eq!(waiter.await.unwrap(), Ok(6 * UNIT));
        assert!(memory.peak() <= 10 * UNIT);
        assert_eq!(memory.held(), 0);
        assert!(matches!(
            memory.reserve(11 * UNIT, deadline()).await.err(),
            Some(Refused::TooLarge { .. })
        ));
        let mut h = memory.reserve(1, deadline()).await.unwrap();
        h.grow(3 * UNIT, deadline()).await.unwrap();
        assert_eq!(memory.held(), 4 * UNIT);
        assert!(matches!(
            h.grow(7 * UNIT, deadline()).await.err(),
            Some(Refused::TooLarge { .. })
        ));
        drop(h);
        assert_eq!(memory.held(), 0);
    }
}
