//! `kiln compose [-f FILE]... [-p NAME] [--profile P]... [--env-file F]...
//! [--project-directory DIR] COMMAND`: Docker Compose's command line over a project
//! read by `kiln-compose`. So far: `config` (the normalised project, as
//! `docker compose config` prints it, `--services`, `--volumes`, `-q`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// A Compose file (repeatable; later ones merge over earlier ones). Default:
    /// compose.yaml (or compose.yml, docker-compose.yaml, docker-compose.yml) and its
    /// override file, from this directory up.
    #[arg(short, long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The project's name (default: COMPOSE_PROJECT_NAME, the file's `name`, or the
    /// directory's name).
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Turn a profile's services on (repeatable; also COMPOSE_PROFILES).
    #[arg(long = "profile")]
    profiles: Vec<String>,
    /// Variables to interpolate the files with (default: the project directory's .env).
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// The directory relative paths start from (default: the first file's).
    #[arg(long)]
    project_directory: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the project as kiln reads it: merged, interpolated, every field in its long
    /// form.
    #[command(alias = "convert")]
    Config {
        /// Only check it: print nothing.
        #[arg(short, long)]
        quiet: bool,
        /// Print the services' names, one a line.
        #[arg(long)]
        services: bool,
        /// Print the volumes' names, one a line.
        #[arg(long)]
        volumes: bool,
        /// Print the active profiles' names.
        #[arg(long)]
        profiles: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = kiln_compose::Options {
        files: args.files,
        project_name: args.project_name,
        project_dir: args.project_directory,
        profiles: args.profiles,
        env_files: args.env_files,
        working_dir: std::env::current_dir().context("the working directory")?,
        environment: std::env::vars().collect(),
    };
    let project = kiln_compose::load(&options)?;
    match args.command {
        Command::Config {
            quiet,
            services,
            volumes,
            profiles,
        } => {
            let file = project.active();
            if quiet {
            } else if services {
                for name in file.services.keys() {
                    println!("{name}");
                }
            } else if volumes {
                for name in file.volumes.keys() {
                    println!("{name}");
                }
            } else if profiles {
                let all: std::collections::BTreeSet<&String> = project
                    .file
                    .services
                    .values()
                    .flat_map(|s| &s.profiles)
                    .collect();
                for p in all {
                    println!("{p}");
                }
            } else {
                print!("{}", kiln_compose::config(&project));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
