//! A peer that announces a large frame and then sends a few bytes costs the
//! reader a few KiB, not the announced length (issue 14, point 5).
//!
//! A counting global allocator records the largest single allocation made
//! on the test's own thread while the read is polled; the read is polled by
//! hand on that thread, so other tests' allocations do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::AsyncRead;
use tiernet_core::wire::frame::length_prefix;
use tiernet_core::wire::limits::MAX_SYNC_RESPONSE;
use tiernet_core::wire::proto;

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping touches only const-initialised thread-locals (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, LARGEST.with(Cell::get))
}

/// Sends its bytes, then either ends (`eof`) or never sends again.
struct Stalling {
    data: Vec<u8>,
    at: usize,
    eof: bool,
}

impl AsyncRead for Stalling {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.data.len() - self.at);
        if n == 0 && !self.eof {
            return Poll::Pending;
        }
        let at = self.at;
        buf[..n].copy_from_slice(&self.data[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(n))
    }
}

/// An 8 MiB frame announced (the sync response cap), 10 bytes sent.
fn announced_8_mib_sent_10(eof: bool) -> Stalling {
    let mut data = length_prefix(MAX_SYNC_RESPONSE);
    data.extend_from_slice(&[0x0a; 10]);
    Stalling { data, at: 0, eof }
}

/// Most a stalled 8 MiB frame may make the reader allocate at once.
const SMALL: usize = 64 * 1024;

#[test]
fn a_stalled_frame_announcing_8_mib_allocates_a_few_kib() {
    let mut reader = announced_8_mib_sent_10(false);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let (pending, largest) = largest_allocation(|| {
        let mut read = std::pin::pin!(tiernet_protocol::read_message::<proto::SyncResponse, _>(&mut reader));
        let mut poll = read.as_mut().poll(&mut cx);
        // A few more polls, as wake-ups would cause: still nothing to read.
        for _ in 0..3 {
            poll = read.as_mut().poll(&mut cx);
        }
        poll.is_pending()
    });
    assert!(pending, "the read waits for the rest of the frame");
    assert_eq!(reader.at, reader.data.len(), "the 10 bytes were read");
    assert!(
        largest <= SMALL,
        "reading 10 bytes of an announced {MAX_SYNC_RESPONSE}-byte frame allocated {largest} bytes at once"
    );
}

#[test]
fn a_frame_that_ends_early_allocates_a_few_kib_and_is_an_eof_error() {
    let mut reader = announced_8_mib_sent_10(true);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let (outcome, largest) = largest_allocation(|| {
        let mut read = std::pin::pin!(tiernet_protocol::read_frame(&mut reader, MAX_SYNC_RESPONSE));
        match read.as_mut().poll(&mut cx) {
            Poll::Ready(result) => result.map(|v| v.len()).map_err(|e| e.kind()),
            Poll::Pending => Ok(usize::MAX),
        }
    });
    assert_eq!(outcome, Err(io::ErrorKind::UnexpectedEof));
    assert!(largest <= SMALL, "allocated {largest} bytes at once");
}

#[test]
fn the_counter_sees_a_large_allocation() {
    // The instrument works: an 8 MiB buffer is seen as one allocation.
    let (len, largest) = largest_allocation(|| std::hint::black_box(vec![0u8; MAX_SYNC_RESPONSE]).len());
    assert_eq!(len, MAX_SYNC_RESPONSE);
    assert!(largest >= MAX_SYNC_RESPONSE, "{largest}");
}
