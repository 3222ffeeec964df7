//! The `dispatch` binary: flags → config → tracing → run.

fn main() {
    eprintln!("dispatch: not yet wired");
    std::process::exit(2);
}
