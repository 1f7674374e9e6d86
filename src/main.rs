use std::process::ExitCode;

use phonehome::cli::{self, CliError};

fn main() -> ExitCode {
    match cli::main(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(msg)) => {
            eprintln!("phonehome: {msg}");
            eprintln!("usage: phonehome --help");
            ExitCode::from(2)
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("phonehome: {msg}");
            ExitCode::FAILURE
        }
    }
}
