//! Embeds the web apps (`../web/console`, `../web/responder`, `../web/common`) into the
//! binary, so `dispatch serve` serves them with no files beside it and no network.
//!
//! Writes `$OUT_DIR/web_files.rs`: a sorted table of (path under `web/`, bytes). Test and
//! benchmark folders, `node_modules` and dotfiles are never embedded.

use std::fs;
use std::path::{Path, PathBuf};

/// The folders of `web/` that are served; everything else there (tests, benchmarks) is not.
const SERVED: &[&str] = &["common", "console", "responder"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("..").join("web");
    let mut files = Vec::new();
    for dir in SERVED {
        let d = web.join(dir);
        println!("cargo:rerun-if-changed={}", d.display());
        collect(&web, &d, &mut files);
    }
    println!("cargo:rerun-if-changed={}", web.display());
    files.sort();
    let mut out =
        String::from("/// Embedded web files: (path under `web/`, contents), sorted by path.\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        out.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("web_files.rs");
    fs::write(dest, out).expect("write web_files.rs");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, path.to_string_lossy().into_owned()));
        }
    }
}
