//! [`WritebackFile`]: a file being written whose data is handed to the disk as it
//! accumulates, instead of all at the final `fsync`.
//!
//! The kernel starts writing dirty pages back on its own only past `dirty_background_ratio`
//! (10% of memory: gigabytes), so a 512 MiB shard would otherwise sit in the page cache until
//! `sync_all`, and the writer would then wait for the whole shard to reach the disk while
//! doing nothing else. Starting write-back every few MiB lets the disk work while the writer
//! hashes and encodes the next records; the final `sync_all` only waits for the tail.

use std::fs::File;
use std::io::{self, Write};

/// Write-back is started each time this many new bytes were written.
const STEP: u64 = 16 << 20;

pub(crate) struct WritebackFile {
    file: File,
    written: u64,
    /// Bytes before this offset have had write-back started.
    started: u64,
}

impl WritebackFile {
    pub fn new(file: File) -> WritebackFile {
        WritebackFile {
            file,
            written: 0,
            started: 0,
        }
    }

    pub fn into_file(self) -> File {
        self.file
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= STEP {
            start_writeback(&self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(target_os = "linux")]
unsafe extern "C" {
    fn sync_file_range(fd: i32, offset: i64, nbytes: i64, flags: u32) -> i32;
}

/// Starts (does not wait for) write-back of `len` bytes from `offset`. Best effort: on
/// failure or elsewhere than Linux the final `sync_all` does all the work, as before.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    const SYNC_FILE_RANGE_WRITE: u32 = 2;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a valid open descriptor owned by `file` for the duration of the call; the call
    // reads no memory of ours and only schedules I/O of the file's own pages.
    unsafe {
        sync_file_range(file.as_raw_fd(), offset, len, SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}
