//! Sequential reading for the stream passes (PNG inflate, the JPEG entropy pass, a JPEG band's
//! bits): a window over the file that only moves forward. In a pass, a reader thread of its own
//! fills it, so the kernel's copy overlaps the decoding thread instead of running on it, and
//! asks the kernel to read ahead (the source is opened for random access).

use std::sync::mpsc::{Receiver, SyncSender};

use crate::error::FormatError;
use crate::source::Source;

/// Bytes read at a time.
pub const READ_BLOCK: usize = 1 << 20;

/// Blocks of the file in order, from [`read_ahead`].
pub type Blocks = Receiver<Result<Vec<u8>, FormatError>>;

/// Read the file from `pos` on, block by block, until the receiver hangs up or the file ends.
pub fn read_ahead(source: &Source, mut pos: u64, tx: SyncSender<Result<Vec<u8>, FormatError>>) {
    loop {
        match read_block(source, pos) {
            Ok(None) => return,
            Ok(Some(block)) => {
                pos += block.len() as u64;
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

/// The block at `pos` (None at the end of the file), with the kernel asked to read on.
fn read_block(source: &Source, pos: u64) -> Result<Option<Vec<u8>>, FormatError> {
    let len = source.len().saturating_sub(pos).min(READ_BLOCK as u64) as usize;
    if len == 0 {
        return Ok(None);
    }
    let mut block = vec![0u8; len];
    let n = source.read_some(pos, &mut block)?;
    if n == 0 {
        return Ok(None);
    }
    block.truncate(n);
    source.prefetch(pos + n as u64, 8 * READ_BLOCK as u64);
    Ok(Some(block))
}

/// Where a [`Window`] gets its blocks.
pub enum Feed<'a> {
    /// From a [`read_ahead`] thread started at the window's first position.
    Thread(Blocks),
    /// Read here, when asked (a short stretch, not worth a thread).
    Direct(&'a Source),
}

/// A forward-only window over the file.
pub struct Window<'a> {
    feed: Feed<'a>,
    /// File bytes from `at` on.
    pub block: Vec<u8>,
    pub at: u64,
}

impl<'a> Window<'a> {
    /// A window starting at `at` (where a `Feed::Thread` reader starts too).
    pub fn new(feed: Feed<'a>, at: u64) -> Self {
        Self {
            feed,
            block: Vec::new(),
            at,
        }
    }

    /// Up to `want` bytes at `pos` (fewer at the end of the file). `pos` never goes back.
    #[inline]
    pub fn bytes(&mut self, pos: u64, want: usize) -> Result<&[u8], FormatError> {
        let end = self.at + self.block.len() as u64;
        if pos < self.at || pos + want as u64 > end {
            self.fill(pos, want)?;
        }
        let from = ((pos - self.at) as usize).min(self.block.len());
        let to = (from + want).min(self.block.len());
        Ok(&self.block[from..to])
    }

    #[inline(never)]
    fn fill(&mut self, pos: u64, want: usize) -> Result<(), FormatError> {
        if pos < self.at {
            return Err(FormatError::invalid("internal: a forward read went back"));
        }
        while pos + want as u64 > self.at + self.block.len() as u64 {
            let end = self.at + self.block.len() as u64;
            let next = match &self.feed {
                Feed::Thread(blocks) => match blocks.recv() {
                    Ok(block) => Some(block?),
                    Err(_) => None, // the reader reached the end of the file
                },
                Feed::Direct(source) => read_block(source, end)?,
            };
            let Some(next) = next else {
                break;
            };
            // Keep only what is at or after `pos`.
            let used = ((pos - self.at) as usize).min(self.block.len());
            self.block.drain(..used);
            self.at += used as u64;
            self.block.extend_from_slice(&next);
        }
        Ok(())
    }
}
