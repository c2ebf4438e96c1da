//! A small logger for the `log` facade: messages to stderr, prefixed `tessera: LEVEL:`.
//! `RUST_LOG` sets the level, `RUST_LOG=debug` or per module, `RUST_LOG=tessera::loader=trace`
//! (the most specific prefix wins); the default shows warnings and errors. Warnings are for
//! errors dropped on purpose (an index or sidecar that cannot be kept), so a run that works
//! prints none.

use log::{Level, LevelFilter, Log, Metadata, Record};

/// `RUST_LOG`, parsed: a default level and per-module levels.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    default: LevelFilter,
    modules: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Parse `warn`, `tessera::levels=debug`, `info,tessera::loader=trace`; unknown parts are
    /// ignored.
    pub fn parse(spec: &str) -> Self {
        let mut f = Self {
            default: LevelFilter::Warn,
            modules: Vec::new(),
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((module, level)) => {
                    if let Ok(l) = level.trim().parse() {
                        f.modules.push((module.trim().to_string(), l));
                    }
                }
                None => {
                    if let Ok(l) = part.parse() {
                        f.default = l;
                    }
                }
            }
        }
        // Longest prefix first: the most specific rule wins.
        f.modules.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
        f
    }

    /// Whether a message at `level` from `target` is shown.
    pub fn enabled(&self, target: &str, level: Level) -> bool {
        let limit = self
            .modules
            .iter()
            .find(|(m, _)| target == m || target.starts_with(&format!("{m}::")))
            .map_or(self.default, |(_, l)| *l);
        level <= limit
    }

    fn max(&self) -> LevelFilter {
        self.modules
            .iter()
            .map(|(_, l)| *l)
            .chain([self.default])
            .max()
            .unwrap_or(LevelFilter::Warn)
    }
}

struct Logger(Filter);

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        self.0.enabled(m.target(), m.level())
    }

    fn log(&self, r: &Record) {
        if self.enabled(r.metadata()) {
            let level = r.level().as_str().to_lowercase();
            eprintln!("tessera: {level}: {}", r.args());
        }
    }

    fn flush(&self) {}
}

/// Install the logger (once; later calls do nothing).
pub fn init() {
    let filter = Filter::parse(&std::env::var("RUST_LOG").unwrap_or_default());
    let max = filter.max();
    if log::set_boxed_logger(Box::new(Logger(filter))).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_sets_levels_by_module() {
        let f = Filter::parse("");
        assert!(f.enabled("tessera::levels", Level::Warn));
        assert!(!f.enabled("tessera::levels", Level::Info));
        let f = Filter::parse("info, tessera::loader=trace,tessera=error, nonsense=");
        assert!(f.enabled("tessera::loader", Level::Trace));
        assert!(f.enabled("tessera::loader::queue", Level::Trace));
        assert!(!f.enabled("tessera::levels", Level::Warn), "tessera=error");
        assert!(f.enabled("eframe", Level::Info));
        assert!(
            !f.enabled("tessera::loaderx", Level::Warn),
            "a module name is matched whole: tessera=error applies"
        );
        assert_eq!(f.max(), LevelFilter::Trace);
    }
}
