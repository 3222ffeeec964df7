//! The `simulator` binary.

fn main() {
    eprintln!("simulator: not yet wired");
    std::process::exit(2);
}
