//! The README names the example roster's tokens; the roster keeps only their SHA-256. Each
//! named token must open an entry of `docs/roster.example.json`, and each entry must be
//! opened by a named token, or a newcomer following the README gets `401` with no way to
//! find the token (defect: CM1's digest once matched no token at all).

use dispatch_server::auth::token_digest;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `demo-…` tokens the README's paragraph on the example roster names.
fn readme_tokens() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("The example roster's tokens")
        .expect("the README names the example roster's tokens");
    let end = start
        + readme[start..]
            .find("SHA-256")
            .expect("the paragraph ends with what the roster keeps");
    readme[start..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| t.starts_with("demo-"))
        .map(str::to_owned)
        .collect()
}

/// Every `token_sha256` in the example roster, with the id of the entry that holds it.
fn roster_digests() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("docs/roster.example.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for list in ["responders", "operators", "devices"] {
        for entry in v[list].as_array().into_iter().flatten() {
            if let Some(d) = entry["token_sha256"].as_str() {
                out.push((entry["id"].as_str().unwrap().to_owned(), d.to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_readme_token_opens_an_example_roster_entry_and_every_entry_has_one() {
    let tokens = readme_tokens();
    assert!(
        tokens.len() >= 3,
        "too few tokens found in the README: {tokens:?}"
    );
    let digests = roster_digests();
    assert!(!digests.is_empty(), "the example roster holds no tokens");
    let named: BTreeSet<String> = tokens.iter().map(|t| token_digest(t)).collect();
    for token in &tokens {
        let d = token_digest(token);
        assert!(
            digests.iter().any(|(_, have)| *have == d),
            "the README names `{token}` but no entry of docs/roster.example.json has its digest {d}"
        );
    }
    for (id, d) in &digests {
        assert!(
            named.contains(d),
            "{id} in docs/roster.example.json has a digest no token the README names opens"
        );
    }
}
