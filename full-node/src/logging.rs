//! Log output: `text` (human-readable, the default) or `json` (one JSON
//! object per line, for log shippers), on stderr.
//!
//! The filter is a `tracing` `EnvFilter` directive (`RUST_LOG` syntax, e.g.
//! `info,tiernet_node=debug,libp2p_gossipsub=warn`): the `RUST_LOG`
//! environment variable when it is set, else the config's `log`.
//!
//! A JSON line: `{"timestamp_ms":…,"level":"INFO","target":"tiernet_node::node",
//! "spans":[{"name":"block_commit","fields":"height=7"}],"fields":{"message":"…",…}}`.
//! Spans name the work in progress: `gossip` (message handling: topic,
//! peer), `handshake` (peer), `sync_request` (peer, height), `block_commit`
//! (height), `heartbeat` (height).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A log filter that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("log filter {directive:?} (from {origin}): {reason}")]
pub struct FilterError {
    /// The directive.
    pub directive: String,
    /// `RUST_LOG` or `log`.
    pub origin: &'static str,
    /// What the parser said.
    pub reason: String,
}

/// The filter: `rust_log` (the `RUST_LOG` variable) when set and not
/// empty, else `configured` (the config's `log`).
pub fn filter(rust_log: Option<&str>, configured: &str) -> Result<EnvFilter, FilterError> {
    let (directive, origin) = match rust_log {
        Some(value) if !value.trim().is_empty() => (value, "RUST_LOG"),
        _ => (configured, "log"),
    };
    EnvFilter::try_new(directive).map_err(|e| FilterError {
        directive: directive.to_owned(),
        origin,
        reason: e.to_string(),
    })
}

/// Installs the global subscriber on stderr. `ansi`: colours in text mode.
pub fn init(format: LogFormat, filter: EnvFilter, ansi: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.with_ansi(false).event_format(JsonFormat).init(),
    }
}

/// The JSON event format.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonFormat;

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let meta = event.metadata();
        let mut line = Map::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        line.insert("timestamp_ms".into(), now.into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let extensions = span.extensions();
                    let recorded = extensions
                        .get::<FormattedFields<N>>()
                        .map(|f| f.fields.as_str().to_owned())
                        .unwrap_or_default();
                    serde_json::json!({ "name": span.name(), "fields": recorded })
                })
                .collect();
            line.insert("spans".into(), spans.into());
        }
        line.insert("fields".into(), Value::Object(fields));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Collects an event's fields as JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_level_target_spans_and_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter(None, "debug").unwrap())
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(JsonFormat)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("block_commit", height = 7).entered();
            tracing::info!(peers = 3u64, ok = true, "committed");
            tracing::trace!("filtered out");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "committed");
        assert_eq!(line["fields"]["peers"], 3);
        assert_eq!(line["fields"]["ok"], true);
        assert_eq!(line["spans"][0]["name"], "block_commit");
        assert_eq!(line["spans"][0]["fields"], "height=7");
    }

    #[test]
    fn rust_log_wins_over_the_config_and_bad_filters_name_their_origin() {
        assert!(filter(Some("debug"), "info").is_ok());
        assert!(filter(Some(""), "info").is_ok());
        let error = filter(Some("tiernet_node=notalevel"), "info").unwrap_err();
        assert_eq!(error.origin, "RUST_LOG");
        let error = filter(None, "x=nope").unwrap_err();
        assert_eq!(error.origin, "log");
    }
}
