//! `simulator run --engine-config FILE`: the engine column runs the file's rules (the keys of
//! `dispatch serve --config`); a bad file is refused by name and nothing is written.

use dispatch_core::testdata::{porto_alegre_hexgrid, porto_alegre_pbf};
use std::path::Path;
use std::process::Command;

/// A small day: 2 hours of alerts over 500 elders and 300 volunteers.
fn run(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(["run", "--map"])
        .arg(porto_alegre_pbf())
        .arg("--population")
        .arg(porto_alegre_hexgrid())
        .args([
            "--hours",
            "2",
            "--seed",
            "3",
            "--elders",
            "500",
            "--volunteers",
            "300",
        ])
        .args(["--falls-per-hour", "20", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("simulator runs")
}

fn offers_sent(out: &Path, policy: &str) -> u64 {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["policies"][policy]["offers"]["sent"]
        .as_u64()
        .unwrap_or_else(|| panic!("offers.sent of {policy} in {v:#}"))
}

#[test]
fn the_engine_column_runs_the_files_rules() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = dir.path().join("one.toml");
    std::fs::write(&rules, "wave_sizes = [1]\nacceptance_target = 0.0\n").expect("write");
    let (a, b) = (dir.path().join("default"), dir.path().join("one"));
    assert!(run(&a, &[]).status.success());
    let o = run(&b, &["--engine-config", rules.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // One person per wave asks fewer people than 3, 5, 8; the baseline is untouched.
    assert!(offers_sent(&b, "engine") < offers_sent(&a, "engine"));
    assert_eq!(
        offers_sent(&b, "nearest_radius"),
        offers_sent(&a, "nearest_radius")
    );
}

#[test]
fn a_bad_rules_file_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tmp");
    for (text, says) in [
        ("acceptance_targt = 0.5\n", "unknown key `acceptance_targt`"),
        ("acceptance_target = 2.0\n", "acceptance_target"),
        ("foot_profile_kmh = 9.0\n", "`foot_profile_kmh` is set by"),
        ("wave_sizes = [\n", "is not TOML"),
    ] {
        let rules = dir.path().join("bad.toml");
        std::fs::write(&rules, text).expect("write");
        let out = dir.path().join("out");
        let o = run(&out, &["--engine-config", rules.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{text}: {err}");
        assert!(!out.exists(), "nothing written for {text}");
    }
}
