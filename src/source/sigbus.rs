//! Survive a mapped file shrinking underneath us.
//!
//! Touching a page of a mapping past the file's new end raises SIGBUS, whatever the mapping
//! flags or locks (see shared/PLATFORM.md). We register every mapping's address range here; the
//! handler maps a zero page over a faulting address inside one of them, counts the fault against
//! that mapping and returns, so the copy in progress finishes with zeros. The reader checks the
//! count after each copy and reports the file as changed instead of returning those zeros.
//! Faults outside our mappings get the previous disposition back, so real bugs still crash.

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

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
static mut PREVIOUS: Option<libc::sigaction> = None;

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
        // SAFETY: sysconf and sigaction are called with valid arguments; the handler only uses
        // atomics, mmap and sigaction, all async-signal-safe in practice on Linux.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE_SIZE.store(page as usize, Ordering::Relaxed);
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut old) == 0 {
                PREVIOUS = Some(old);
            }
        }
    });
}

extern "C" fn handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in REGISTRY.iter() {
        let start = s.start.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Acquire);
        if start != 0 && addr >= start && addr < start + len {
            let page = PAGE_SIZE.load(Ordering::Relaxed);
            let base = addr & !(page - 1);
            // SAFETY: replaces one page inside a mapping we own with anonymous zeros; the
            // faulting instruction is then retried and succeeds.
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
    // SAFETY: PREVIOUS was written once, before this handler was installed.
    unsafe {
        let prev = std::ptr::addr_of!(PREVIOUS).read();
        match prev {
            Some(old) => libc::sigaction(libc::SIGBUS, &old, std::ptr::null_mut()),
            None => libc::signal(libc::SIGBUS, libc::SIG_DFL) as libc::c_int,
        };
    }
}
