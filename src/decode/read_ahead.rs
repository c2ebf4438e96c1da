//! A reader thread for sequential passes (PNG inflate, the JPEG entropy pass): it reads the
//! file in order into blocks, so the kernel's copy overlaps the decoding thread instead of
//! running on it, and asks the kernel to read ahead (the source is opened for random access).

use std::sync::mpsc::{Receiver, SyncSender};

use crate::error::FormatError;
use crate::source::Source;

/// Bytes read at a time.
pub const READ_BLOCK: usize = 1 << 20;

/// File blocks read in order by a thread of their own: the kernel's copy into our buffers
/// then overlaps the inflater (the bottleneck) instead of running on it.
pub type Blocks = Receiver<Result<Vec<u8>, FormatError>>;

pub fn read_ahead(source: &Source, mut pos: u64, tx: SyncSender<Result<Vec<u8>, FormatError>>) {
    loop {
        let len = source.len().saturating_sub(pos).min(READ_BLOCK as u64) as usize;
        if len == 0 {
            return;
        }
        let mut block = vec![0u8; len];
        match source.read_some(pos, &mut block) {
            Ok(0) => return,
            Ok(n) => {
                block.truncate(n);
                pos += n as u64;
                // The kernel reads ahead only when asked (the source is marked random access).
                source.prefetch(pos, 8 * READ_BLOCK as u64);
                if tx.send(Ok(block)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}
