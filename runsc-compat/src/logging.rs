//! The log: warnings (and with `--debug`, everything) to standard error, `--log` or
//! `--debug-log`. Warnings and errors always reach `--log`: a runc shim reads the error
//! of a failed command from there.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;

use crate::GlobalFlags;

struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    /// `--log`, when the debug log took `out`: warnings and errors go there too.
    also: Option<Mutex<std::fs::File>>,
    json: bool,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let pid = std::process::id();
        let line = if self.json {
            let msg = serde_json::json!({
                "level": record.level().as_str().to_lowercase(),
                "msg": record.args().to_string(),
                "pid": pid,
            });
            format!("{msg}\n")
        } else {
            format!(
                "bulwark[{pid}] {} {}: {}\n",
                record.level(),
                record.target(),
                record.args()
            )
        };
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(line.as_bytes());
        if let Some(also) = self
            .also
            .as_ref()
            .filter(|_| record.level() <= log::Level::Warn)
        {
            let _ = also
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.flush();
    }
}

/// Where the log of `command` goes: `--debug-log` with `--debug`, else `--log`, else
/// standard error (`None`). A `--debug-log` ending in `/` is a directory, created if
/// missing, with a file per process, `bulwark.SECONDS.PID.COMMAND.log`: as with runsc,
/// every process of every container (create, boot, gofer, …) logs apart.
fn path(flags: &GlobalFlags, command: &str) -> anyhow::Result<Option<PathBuf>> {
    if let Some(debug_log) = flags.debug_log.as_ref().filter(|_| flags.debug) {
        if !debug_log.ends_with('/') {
            return Ok(Some(PathBuf::from(debug_log)));
        }
        std::fs::create_dir_all(debug_log)
            .with_context(|| format!("creating the log directory {debug_log}"))?;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // The host's PID: the Sentry is PID 1 of its own namespace, but /proc is still the
        // host's here.
        let pid = std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str()?.parse::<u32>().ok())
            .unwrap_or_else(std::process::id);
        let name = format!("bulwark.{secs}.{pid}.{command}.log");
        return Ok(Some(Path::new(debug_log).join(name)));
    }
    Ok(flags.log.as_ref().map(PathBuf::from))
}

fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))
}

pub fn init(flags: &GlobalFlags, command: &str) -> anyhow::Result<()> {
    let path = path(flags, command)?;
    let out: Box<dyn Write + Send> = match &path {
        Some(path) => Box::new(open(path)?),
        None => Box::new(std::io::stderr()),
    };
    let also = match &flags.log {
        Some(log) if path.as_deref() != Some(Path::new(log)) => {
            Some(Mutex::new(open(Path::new(log))?))
        }
        _ => None,
    };
    let level = if flags.debug {
        log::LevelFilter::Debug
    } else if flags.strace {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    };
    let logger = Logger {
        out: Mutex::new(out),
        also,
        json: flags.log_format == "json",
        level,
    };
    log::set_boxed_logger(Box::new(logger)).context("installing the logger")?;
    log::set_max_level(level);
    Ok(())
}
