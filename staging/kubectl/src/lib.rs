//! kubectl's commands (upstream `k8s.io/kubectl`): the command tree, and one module
//! per command under `cmd/` as upstream keeps them in `pkg/cmd/<name>`.

pub mod cmd;
pub mod describe;
pub mod error;
pub mod explain;
pub mod factory;
pub mod merge;
pub mod output;
pub mod pipe;
pub mod polymorphic;
pub mod strategicpatch;
pub mod term;

use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;

/// Runs kubectl with `args` (the program name first); returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    // cobra's hidden completion command: everything after it is the line being completed.
    let strings: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(i) = cmd::command_index(&args)
        && (strings[i] == "__complete" || strings[i] == "__completeNoDesc")
    {
        let mut words: Vec<String> = strings[1..i].to_vec();
        words.extend(strings[i + 1..].iter().cloned());
        return cmd::completion::complete(words, strings[i] == "__complete");
    }
    let command = cmd::Cli::command();
    let args = cmd::flags::hoist_global_flags(&command, args);
    let args = match cmd::flags::normalize_bools(&command, args) {
        Ok(a) => a,
        Err((message, argv)) => return cmd::flag_error(&message, &argv),
    };
    let parsed = command
        .try_get_matches_from(&args)
        .and_then(|m| cmd::Cli::from_arg_matches(&m));
    let cli = match parsed {
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
