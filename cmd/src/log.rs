//! Log output in frp's spirit for both binaries: one line per event,
//! `2006-01-02 15:04:05.000 [I] [span fields] message`, to the console or appended to a file
//! (`log.to`), filtered by `log.level`. Spans carry the context frp threads by hand through its
//! `xlog` prefixes (run id, proxy name), so each line names the client and proxy it is about.

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Where and how much to log: frp's `log` section.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// `console` or a file path.
    pub to: String,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            to: "console".into(),
            level: "info".into(),
        }
    }
}

/// Error from [`init`]: the log file could not be opened or the level is unknown.
#[derive(Debug)]
pub struct InitError(String);

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InitError {}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level` (for debugging the
/// crates below ours). Calling it twice is harmless: the second call is ignored.
pub fn init(opts: &LogOptions) -> Result<(), InitError> {
    let level = parse_level(&opts.level)?;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(level.to_string().to_lowercase()),
    };
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(filter)
        .event_format(FrpFormat);
    let result = if opts.to.is_empty() || opts.to == "console" {
        builder.with_writer(io::stdout).try_init()
    } else {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&opts.to))
            .map_err(|e| InitError(format!("open log file {}: {e}", opts.to)))?;
        builder.with_writer(Mutex::new(file)).try_init()
    };
    // A second init in the same process (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}

/// Parses frp's level names.
pub fn parse_level(s: &str) -> Result<Level, InitError> {
    match s.to_ascii_lowercase().as_str() {
        "trace" => Ok(Level::TRACE),
        "debug" => Ok(Level::DEBUG),
        "info" | "" => Ok(Level::INFO),
        "warn" | "warning" => Ok(Level::WARN),
        "error" => Ok(Level::ERROR),
        other => Err(InitError(format!("unknown log level {other:?}"))),
    }
}

/// frp's one-letter level tags.
fn level_tag(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "T",
        Level::DEBUG => "D",
        Level::INFO => "I",
        Level::WARN => "W",
        Level::ERROR => "E",
    }
}

struct FrpFormat;

impl<S, N> FormatEvent<S, N> for FrpFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now =
            time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        let stamp = now
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
            ))
            .map_err(|_| fmt::Error)?;
        write!(writer, "{stamp} [{}] ", level_tag(event.metadata().level()))?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, "[{}] ", strip_field_names(fields))?;
                    }
                }
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Spans are written as `[value]` like frp's prefixes: `run_id=abc` shows as `abc`.
fn strip_field_names(fields: &str) -> String {
    fields
        .split(' ')
        .map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v).trim_matches('"'))
        .collect::<Vec<_>>()
        .join("] [")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(parse_level("WARN").ok(), Some(Level::WARN));
        assert!(parse_level("loud").is_err());
    }

    #[test]
    fn span_fields_become_prefixes() {
        assert_eq!(strip_field_names("run_id=abc proxy=\"web\""), "abc] [web");
    }
}
