//! Survive a mapped file shrinking underneath us.
//!
//! Touching a page of a mapping past the file's new end raises SIGBUS, whatever the mapping
//! flags or locks (see shared/PLATFORM.md). We register every mapping's address range here; the
//! handler maps a zero page over a faulting address inside one of them, counts the fault against
//! that mapping and returns, so the copy in progress finishes with zeros. The reader checks the
//! count after each copy and reports the file as changed instead of returning those zeros.
//! Faults outside our mappings get the previous disposition back, so real bugs still crash.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

const SLOTS: usize = 256;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    faults: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // reason: only used to initialise the array
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faults: AtomicUsize::new(0),
};
static REGISTRY: [Slot; SLOTS] = [EMPTY; SLOTS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
/// The disposition SIGBUS had before ours, set before ours is installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A registered range; unregisters on drop (before the mapping itself is unmapped).
pub struct Guard {
    slot: usize,
}

impl Guard {
    /// Faults seen in this range since it was registered.
    pub fn faults(&self) -> usize {
        REGISTRY[self.slot].faults.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &REGISTRY[self.slot];
        s.len.store(0, Ordering::Release);
        s.start.store(0, Ordering::Release);
    }
}

/// Register a mapped range; `None` when every slot is taken (the caller then reads with pread).
pub fn register(start: usize, len: usize) -> Option<Guard> {
    install();
    for (i, s) in REGISTRY.iter().enumerate() {
        if s.start
            .compare_exchange(0, start, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            s.faults.store(0, Ordering::Release);
            s.len.store(len, Ordering::Release);
            return Some(Guard { slot: i });
        }
    }
    None
}

fn install() {
    INSTALL.call_once(|| {
        PAGE_SIZE.store(super::page_size(), Ordering::Relaxed);
        // SAFETY: both sigaction calls get pointers to live, fully initialised structs (a
        // zeroed `sigaction` is a valid value: no handler, empty mask, no flags), and
        // sigemptyset writes only the mask we pass. The previous disposition is read and kept
        // before ours is installed, so the handler always finds it. The handler itself only
        // touches atomics, `PREVIOUS` (an atomic load once set) and the mmap and sigaction
        // system calls, which on Linux are plain syscalls that take no lock in the C library.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return;
            }
            let _ = PREVIOUS.set(old);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
}

extern "C" fn handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the handler is installed with SA_SIGINFO, for which the kernel passes a valid
    // siginfo; for SIGBUS its address field is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in REGISTRY.iter() {
        let start = s.start.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Acquire);
        if start != 0 && addr >= start && addr < start + len {
            let page = PAGE_SIZE.load(Ordering::Relaxed);
            let base = addr & !(page - 1);
            // SAFETY: `base..base + page` is a page inside a mapping registered by its owner
            // and still alive (a guard unregisters before the unmap); MAP_FIXED replaces just
            // that page with anonymous zeros, read-only like the file mapping. The faulting
            // read is then retried and succeeds; the owner sees the counted fault and reports
            // the file as changed instead of using the zeros.
            let r = unsafe {
                libc::mmap(
                    base as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if r != libc::MAP_FAILED {
                s.faults.fetch_add(1, Ordering::AcqRel);
                return;
            }
        }
    }
    // Not one of ours: restore the previous disposition; the fault repeats and is handled
    // (or kills the process) as it would have been without us.
    // SAFETY: `PREVIOUS` is set before this handler is installed (see `install`), and
    // restoring a disposition the kernel handed us, or the default, is a plain syscall.
    unsafe {
        match PREVIOUS.get() {
            Some(old) => libc::sigaction(libc::SIGBUS, old, std::ptr::null_mut()),
            None => libc::signal(libc::SIGBUS, libc::SIG_DFL) as libc::c_int,
        };
    }
}
