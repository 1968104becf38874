//! kubectl's commands (upstream `k8s.io/kubectl`): the command tree, and one module
//! per command under `cmd/` as upstream keeps them in `pkg/cmd/<name>`.

pub mod cmd;
pub mod error;
pub mod factory;
pub mod merge;
pub mod output;

use clap::Parser;
use std::ffi::OsString;

/// Runs kubectl with `args` (the program name first); returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match cmd::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return cmd::usage_error(e, &args),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(cmd::run(cli));
    output::flush();
    match result {
        Ok(()) => 0,
        Err(e) => {
            if !e.text.is_empty() {
                eprintln!("{}", e.text);
            }
            e.code
        }
    }
}
