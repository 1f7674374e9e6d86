use std::process::ExitCode;

use phonehome::cli::{self, UsageOr};

fn main() -> ExitCode {
    match cli::main(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(UsageOr::Usage(msg)) => {
            eprintln!("phonehome: {msg}");
            eprintln!("usage: phonehome --help");
            ExitCode::from(2)
        }
        Err(UsageOr::Failed(msg)) => {
            eprintln!("phonehome: {msg}");
            ExitCode::FAILURE
        }
    }
}
