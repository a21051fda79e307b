//! The binary: parse the command line, run the command (`cli::run`), say its error and exit.
//! Everything a command does is library code in `src/cli/`.

use std::process::ExitCode;

use securedrop_tor_exporter::cli::{self, Parsed};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(c)) => c,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version(v)) => {
            println!("{v}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("securedrop-tor-exporter: error: {e}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    // A question answered "no" exits 1, so an error there must say something else.
    let question = command.is_question();
    match cli::run(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("securedrop-tor-exporter: error: {}", cli::error_chain(&e));
            if question {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
