//! Observability that the lab can switch on and off between windows.
//!
//! A process gets one global `tracing` subscriber and one global metrics
//! recorder, and neither can be uninstalled. So:
//!
//! * tracing: the lab installs, once, the binary's own JSON log layer
//!   (`telemetry::json_logs`), behind a reloadable `EnvFilter`. "Off" is the filter `off`:
//!   every callsite is disabled, so `info_span!` and `TraceLayer` cost a
//!   relaxed load and a branch, as in a process with no subscriber at all.
//!   "On" is `info`, the binary's default. Between them, [`Tracing::SpansOnly`]
//!   keeps the spans and drops the access lines (`AccessLog`, written when
//!   a response leaves), so the lab can tell the two apart.
//! * metrics: the service registers its metric handles once, when its state
//!   is built. So the lab builds the service more than once: one copy whose
//!   handles come from the Prometheus recorder (on), one whose handles come
//!   from `metrics::NoopRecorder` (off), and sends each window's load to one
//!   or the other. A third copy records like "on" (into the same series)
//!   and logs every answer (`log_every_request`). All copies share the
//!   process, the runtime and the fakes.
//!
//! The log lines go to a writer that counts them and throws them away: the
//! lab measures what it costs to *produce* logs, not the speed of this
//! machine's terminal or disk.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use step4_service::{AppState, ServiceConfig};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, reload};

/// The tracing switch, the metrics, and what was written while on.
pub struct Observability {
    filter: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    /// Renders what the Prometheus recorder holds.
    pub metrics: PrometheusHandle,
    /// Log lines written (and discarded) so far.
    pub log_lines: Arc<AtomicU64>,
    /// Their size in bytes.
    pub log_bytes: Arc<AtomicU64>,
}

impl Observability {
    /// Installs the global subscriber (switched off) and the global
    /// Prometheus recorder.
    pub fn install() -> anyhow::Result<Observability> {
        let (filter, handle) = reload::Layer::new(EnvFilter::new("off"));
        let log_lines = Arc::new(AtomicU64::new(0));
        let log_bytes = Arc::new(AtomicU64::new(0));
        let sink = CountingSink {
            lines: Arc::clone(&log_lines),
            bytes: Arc::clone(&log_bytes),
        };
        tracing_subscriber::registry()
            .with(filter)
            .with(step4_service::telemetry::json_logs(move || sink.clone()))
            .try_init()?;
        let metrics = step4_service::prometheus_builder().install_recorder()?;
        Ok(Observability {
            filter: handle,
            metrics,
            log_lines,
            log_bytes,
        })
    }

    /// Builds the service's state three times: `(off, on, every_line)`.
    /// The off copy's metric handles record nothing; the every-line copy
    /// records like on and logs every answer.
    pub fn states(&self, config: ServiceConfig) -> anyhow::Result<States> {
        let off = metrics::with_local_recorder(&metrics::NoopRecorder, || {
            AppState::new(config.clone(), self.metrics.clone())
        })?;
        let on = AppState::new(config.clone(), self.metrics.clone())?;
        let every_line = AppState::new(
            ServiceConfig {
                log_every_request: true,
                ..config
            },
            self.metrics.clone(),
        )?;
        Ok((off, on, every_line))
    }

    /// Switches logs and spans on or off.
    pub fn set_tracing(&self, tracing: Tracing) -> anyhow::Result<()> {
        self.filter.reload(EnvFilter::new(tracing.filter()))?;
        Ok(())
    }
}

/// The service's states, off, on and every-line (see [`Observability::states`]).
pub type States = (Arc<AppState>, Arc<AppState>, Arc<AppState>);

/// How much of the tracing is switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracing {
    /// Nothing: every callsite disabled.
    Off,
    /// The spans (request spans, recorded by the JSON layer), but not the
    /// access log lines.
    SpansOnly,
    /// Everything at `info`, as the binary runs.
    On,
}

impl Tracing {
    /// The `EnvFilter` directives. The access line has a target of its own,
    /// `ACCESS_LOG_TARGET`.
    fn filter(self) -> &'static str {
        match self {
            Tracing::Off => "off",
            Tracing::SpansOnly => "info,step4_service::access=off",
            Tracing::On => "info",
        }
    }
}

/// A `Write` that counts what it is given and keeps none of it. The JSON
/// formatter writes each line with one call.
#[derive(Clone)]
struct CountingSink {
    lines: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lines.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// CPU time this process has used so far (user + system), where the OS
/// tells us cheaply: Linux's `/proc/self/stat`. `None` elsewhere.
pub fn process_cpu_time() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; the fields after its
    // closing parenthesis are plain numbers. utime and stime are fields 14
    // and 15, in clock ticks (100 per second on every mainstream Linux).
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(std::time::Duration::from_millis((utime + stime) * 10))
}
