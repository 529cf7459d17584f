//! The `kiln` command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "kiln", version, about = "Build, store, serve and run container images")]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiln: {err:#}");
            ExitCode::FAILURE
        }
    }
}
