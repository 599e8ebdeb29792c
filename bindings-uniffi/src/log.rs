//! The log callback: the client's `tracing` events, formatted, handed to
//! a listener of the app's (Swift `os_log`, Android `Log`, Python
//! `logging`). One listener per process; a later call replaces it and its
//! level. Events above the level cost one atomic load.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Once, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::FfiError;

/// Most bytes of one formatted log line handed over (longer ones are cut).
pub const MAX_LOG_LINE: usize = 4096;

/// Receives log lines (called from whichever thread logs).
#[uniffi::export(callback_interface)]
pub trait LogListener: Send + Sync {
    /// One line: `level` is `error`, `warn`, `info`, `debug` or `trace`;
    /// `target` the Rust module; `message` the text with its fields.
    fn on_log(&self, level: String, target: String, message: String);
}

static LISTENER: RwLock<Option<Arc<dyn LogListener>>> = RwLock::new(None);
/// 0: off, 1: error … 5: trace.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static INSTALL: Once = Once::new();

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn parse_level(level: &str) -> Result<u8, FfiError> {
    Ok(match level {
        "off" => 0,
        "error" => 1,
        "warn" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        other => {
            return Err(FfiError::BadInput {
                reason: format!("log level {other:?}: expected off, error, warn, info, debug or trace"),
            });
        }
    })
}

/// Sends the client's log lines at `level` (`off`, `error`, `warn`,
/// `info`, `debug`, `trace`) and above to `listener`, replacing an earlier
/// listener. If the process already has another global `tracing`
/// subscriber, that one keeps the logs and this is a no-op.
#[uniffi::export]
pub fn set_log_listener(listener: Box<dyn LogListener>, level: String) -> Result<(), FfiError> {
    let level = parse_level(&level)?;
    *LISTENER.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::from(listener));
    MAX_LEVEL.store(level, Ordering::Relaxed);
    INSTALL.call_once(|| {
        // Err: another global subscriber was installed first; it keeps the logs.
        let _ = tracing_subscriber::registry().with(Forward).try_init();
    });
    Ok(())
}

/// Formats each event and hands it to the listener.
struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        rank(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let listener = LISTENER
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(listener) = listener else { return };
        let mut line = Line::default();
        event.record(&mut line);
        let metadata = event.metadata();
        listener.on_log(
            metadata.level().as_str().to_ascii_lowercase(),
            metadata.target().to_owned(),
            line.0,
        );
    }
}

/// `message` first, then ` key=value` for the other fields, cut at
/// [`MAX_LOG_LINE`] bytes.
#[derive(Default)]
struct Line(String);

impl Line {
    fn push(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.0.len() >= MAX_LOG_LINE {
            return;
        }
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
        if self.0.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !self.0.is_char_boundary(cut) {
                cut -= 1;
            }
            self.0.truncate(cut);
        }
    }
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, &format_args!("{value}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Collect(Arc<Mutex<Vec<(String, String)>>>);

    impl LogListener for Collect {
        fn on_log(&self, level: String, _target: String, message: String) {
            self.0.lock().unwrap().push((level, message));
        }
    }

    #[test]
    fn lines_reach_the_listener_at_its_level_and_a_bad_level_is_refused() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        set_log_listener(Box::new(Collect(Arc::clone(&lines))), "info".into()).unwrap();
        tracing::info!(height = 7, "verified");
        tracing::debug!("hidden");
        tracing::warn!(reason = %"x".repeat(2 * MAX_LOG_LINE), "long");
        let got = lines.lock().unwrap().clone();
        assert_eq!(got[0], ("info".to_owned(), "verified height=7".to_owned()));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].0, "warn");
        assert!(got[1].1.starts_with("long reason=") && got[1].1.len() == MAX_LOG_LINE);
        assert!(matches!(
            set_log_listener(Box::new(Collect(lines)), "loud".into()),
            Err(FfiError::BadInput { .. })
        ));
    }
}
