//! The command line: arguments (clap), one module per subcommand, the progress bar. Every
//! decision about images lives in the library; these modules parse, call and print.

mod convert;
mod index;
mod info;
mod levels;
mod progress_bar;
mod render;
mod view;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tessera::levels::LevelsConfig;

/// Tessera views images larger than RAM: it reads only the tile descriptors in view.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    view: view::ViewArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the format, size, pages, levels and every tile descriptor.
    Info(info::InfoArgs),
    /// Render a region to an 8-bit PNG, reading only the descriptors that intersect it.
    Render(render::RenderArgs),
    /// Build the zoomed-out levels (kept for the viewer and for renders).
    Levels(levels::LevelsArgs),
    /// Write any image Tessera reads as a tiled (Big)TIFF, optionally with a pyramid.
    Convert(convert::ConvertArgs),
    /// Record a PNG/JPEG's checkpoints (kept with the levels).
    Index(index::IndexArgs),
    /// Drive the viewer along a scripted path and print one JSON line of timings.
    BenchView(view::BenchArgs),
}

/// Where and how built levels are kept (the viewer, `info`, `render`, `levels`, `index`).
#[derive(Debug, Clone, Default, Args)]
struct LevelArgs {
    /// Where levels are kept [default: ~/.cache/tessera/levels]
    #[arg(long, value_name = "DIR")]
    levels_dir: Option<PathBuf>,
    /// Total size of kept levels, in MB [default: 4096]
    #[arg(long, value_name = "M")]
    levels_cap_mb: Option<u64>,
    /// Build into a temporary file, keep nothing
    #[arg(long)]
    no_keep_levels: bool,
}

impl LevelArgs {
    fn config(&self) -> LevelsConfig {
        let mut cfg = LevelsConfig::default();
        if let Some(d) = &self.levels_dir {
            cfg.dir = Some(d.clone());
        }
        if let Some(mb) = self.levels_cap_mb {
            cfg.cap_bytes = mb.saturating_mul(1 << 20);
        }
        if self.no_keep_levels {
            cfg.dir = None;
        }
        cfg
    }
}

/// Parse the arguments and run the command; errors print as one line and exit 2.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's message up to its usage block, then where to look.
            let text = e.to_string();
            let msg: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            let msg = msg.join(" ");
            let msg = msg.trim_start_matches("error: ");
            return fail(&format!("{msg} (see tessera --help)"));
        }
    };
    let result = match cli.command {
        None => view::run(cli.view),
        Some(Command::Info(a)) => info::run(a),
        Some(Command::Render(a)) => render::run(a),
        Some(Command::Levels(a)) => levels::run(a),
        Some(Command::Convert(a)) => convert::run(a),
        Some(Command::Index(a)) => index::run(a),
        Some(Command::BenchView(a)) => view::bench(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&one_line(&e)),
    }
}

/// The error and its causes on one line, no backtrace, each cause once: Tessera's errors
/// already print their source, so a cause whose text is in the message is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

fn fail(msg: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "tessera: {}", msg.replace('\n', " "));
    ExitCode::from(2)
}
