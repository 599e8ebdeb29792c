//! The few runtime services the client needs, from tokio natively and from
//! the page's event loop in a browser (wasm32). Everything else in the
//! crate is runtime-free: channels are tokio's `sync` ones, which need no
//! runtime, and time is [`Instant`] from `web-time` (the browser's clock on
//! wasm32, `std` elsewhere).

use std::future::Future;
use std::time::Duration;

use futures::future::{Either, select};

pub use web_time::Instant;

/// The local wall clock, ms since the Unix epoch (0 if it is before it).
pub fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs `task` in the background (tokio natively: call from inside a
/// runtime).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(task);
}

/// Runs `task` in the background on the page's event loop.
#[cfg(target_arch = "wasm32")]
pub(crate) fn spawn(task: impl Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(task);
}

/// Waits `duration`.
pub async fn sleep(duration: Duration) {
    #[cfg(not(target_arch = "wasm32"))]
    tokio::time::sleep(duration).await;
    #[cfg(target_arch = "wasm32")]
    futures_timer::Delay::new(duration).await;
}

/// `future` did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out")]
pub struct Elapsed;

/// `future`'s output, or [`Elapsed`] once `deadline` passes.
pub async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Result<F::Output, Elapsed> {
    let left = deadline.saturating_duration_since(Instant::now());
    match select(std::pin::pin!(future), std::pin::pin!(sleep(left))).await {
        Either::Left((output, _)) => Ok(output),
        Either::Right(_) => Err(Elapsed),
    }
}
