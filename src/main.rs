//! The `tessera` binary: the viewer (`tessera [FILE]`) and the commands `info`, `render`,
//! `levels`, `index` and `bench-view`. Arguments, one module per command and the progress
//! bar live in `cli/`; what the commands do lives in the library. Errors print as one line
//! and exit 2.

mod cli;

fn main() -> std::process::ExitCode {
    tessera::bench_view::mark_process_start();
    tessera::logging::init();
    cli::run()
}
