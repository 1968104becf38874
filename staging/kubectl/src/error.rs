//! How a command fails: the text kubectl prints and its exit code. Upstream twin:
//! `kubectl/pkg/cmd/util/helpers.go` (`CheckErr`).

use cli_runtime::client::Error;

#[derive(Debug)]
pub struct CmdError {
    /// Printed to stderr as is (already `error: …` or `Error from server …`).
    pub text: String,
    pub code: i32,
}

impl CmdError {
    /// `error: <m>`; a refused connection is reported as `CheckErr` reports any
    /// (`The connection to the server … was refused …`, no prefix).
    pub fn msg(m: impl std::fmt::Display) -> CmdError {
        let m = m.to_string();
        let text = if m.starts_with("The connection to the server ") {
            m
        } else {
            format!("error: {m}")
        };
        CmdError { text, code: 1 }
    }

    /// Printed without a prefix.
    pub fn plain(m: impl std::fmt::Display) -> CmdError {
        CmdError {
            text: m.to_string(),
            code: 1,
        }
    }

    /// Nothing more to print (the command reported its errors as it went).
    pub fn silent(code: i32) -> CmdError {
        CmdError {
            text: String::new(),
            code,
        }
    }
}

impl From<Error> for CmdError {
    fn from(e: Error) -> CmdError {
        CmdError::plain(e.message())
    }
}

pub type CmdResult = Result<(), CmdError>;

/// The end of a command that reports failures as it goes on: every message, one per
/// line, and exit 1; success when there were none.
pub fn from_messages(errors: Vec<String>) -> CmdResult {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CmdError::plain(errors.join("\n")))
    }
}
