//! One module per subcommand.

mod parse;

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Parse a Dockerfile and print its syntax tree.
    Parse(parse::Args),
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Parse(args) => parse::run(args),
    }
}
