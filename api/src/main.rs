//! The `feeledger` binary: see `feeledger --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    feeledger_api::cli::main()
}
