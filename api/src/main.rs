//! The `feeledger` binary: see `feeledger --help`.

use std::process::ExitCode;

/// jemalloc instead of glibc's malloc: the server's CPU per bank notification fell by 17–21 %
/// (a fifth of it had gone to `malloc`/`free`), and with the settings in `.cargo/config.toml`
/// 10,000 open screens take about the memory they took before (docs/BENCHMARKS.md, "jemalloc").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    feeledger_api::cli::main()
}
