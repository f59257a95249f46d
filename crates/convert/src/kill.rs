//! Test-only crash points, compiled in only with the `test-hooks` feature: the test suite
//! builds with it, release builds contain none of this and [`kill_point`] is an empty inline
//! function there.
//!
//! `EDITSHARD_TEST_KILL_AT=<event>:<n>` makes the process send itself SIGKILL (a real
//! `kill -9`, no clean-up of any kind) the n-th time `event` happens. Events: `fetched` (an
//! image entered the cache), `appended` (a record was written), `published` (a shard is in
//! DEST but the resume state does not know yet), `saved` (the resume state was updated),
//! `finishing` (everything but the manifest is written), `manifest` (the manifest is
//! written, the work directory not yet removed).

/// Does nothing: built without the `test-hooks` feature.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn kill_point(_event: &str) {}

/// Kills the process if `EDITSHARD_TEST_KILL_AT` names this event and count.
#[cfg(feature = "test-hooks")]
pub fn kill_point(event: &str) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SPEC: Mutex<Option<Option<(String, u64)>>> = Mutex::new(None);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let spec = {
        let mut guard = SPEC.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .get_or_insert_with(|| {
                let v = std::env::var("EDITSHARD_TEST_KILL_AT").ok()?;
                let (e, n) = v.split_once(':')?;
                Some((e.to_string(), n.parse().ok()?))
            })
            .clone()
    };
    let Some((want, n)) = spec else {
        return;
    };
    if want != event || COUNT.fetch_add(1, Ordering::SeqCst) + 1 != n {
        return;
    }
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
