//! The `dispatch` binary: flags → config → tracing → run. Nothing else lives here.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dispatch",
    about = "Real-time emergency dispatch for older people living at home"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the service: WebSocket + HTTP on one port.
    Serve(dispatch_server::serve_cmd::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve(args) => dispatch_server::serve_cmd::main(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatch: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
