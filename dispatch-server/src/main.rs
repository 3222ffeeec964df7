//! The `dispatch` binary: a thin clap dispatcher, one subcommand per job.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod route_cmd;

/// Real-time emergency dispatch for older people living at home.
#[derive(Debug, Parser)]
#[command(name = "dispatch", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One route as JSON, or one per line of a pairs file (with timings on stderr).
    Route(route_cmd::RouteArgs),
    /// Run the service: WebSocket + HTTP on one port (prints where it listens).
    Serve(Box<dispatch_server::serve_cmd::ServeArgs>),
    /// Every incident with its full timeline as JSON lines (reads archive/ and the journal).
    Export(dispatch_server::export_cmd::ExportArgs),
    /// The roster a data directory holds now (`roster export`), read only.
    #[command(subcommand)]
    Roster(dispatch_server::roster_cmd::RosterCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Route(args) => route_cmd::run(args),
        Command::Serve(args) => dispatch_server::serve_cmd::main(*args),
        Command::Export(args) => dispatch_server::export_cmd::run(&args),
        Command::Roster(cmd) => dispatch_server::roster_cmd::run(&cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatch: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
