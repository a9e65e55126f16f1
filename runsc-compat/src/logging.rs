//! The log: warnings (and with `--debug`, everything) to standard error or `--log`.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

use anyhow::Context;

use crate::GlobalFlags;

struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
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
    }

    fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.flush();
    }
}

pub fn init(flags: &GlobalFlags) -> anyhow::Result<()> {
    let path = flags
        .debug_log
        .as_ref()
        .filter(|_| flags.debug)
        .or(flags.log.as_ref());
    let out: Box<dyn Write + Send> = match path {
        Some(path) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {path}"))?,
        ),
        None => Box::new(std::io::stderr()),
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
        json: flags.log_format == "json",
        level,
    };
    log::set_boxed_logger(Box::new(logger)).context("installing the logger")?;
    log::set_max_level(level);
    Ok(())
}
