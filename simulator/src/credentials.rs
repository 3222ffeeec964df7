//! Bearer tokens for a generated roster: random per seed, handed out in a tokens file, and
//! stored in the roster only as SHA-256 hex digests (DESIGN §5.1), so a server can be started
//! on a generated scenario and the load driver can log in as anybody in it.

use crate::behaviour::keyed_rng;
use dispatch_core::roster::RosterFile;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The tokens file: plain tokens by role and id. Keep it private; the roster holds digests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    pub operators: BTreeMap<String, String>,
    pub devices: BTreeMap<String, String>,
    pub responders: BTreeMap<String, String>,
}

/// SHA-256 of a token, lower-case hex, as the roster stores it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A 128-bit token drawn for (seed, role, id): reproducible for a seed, unguessable without it.
fn token(seed: u64, role: &str, id: &str) -> String {
    let mut rng = keyed_rng(seed, &[b"token", role.as_bytes(), id.as_bytes()]);
    let bytes: [u8; 16] = rng.random();
    format!("{role}-{}", hex::encode(bytes))
}

/// Gives everybody in `roster` a token (operators, devices, responders) and writes the digests
/// into the roster.
pub fn issue(roster: &mut RosterFile, seed: u64) -> Tokens {
    let mut tokens = Tokens::default();
    for op in &mut roster.operators {
        let t = token(seed, "op", op.id.as_str());
        op.token_sha256 = token_sha256(&t);
        tokens.operators.insert(op.id.to_string(), t);
    }
    for dev in &mut roster.devices {
        let t = token(seed, "dev", dev.id.as_str());
        dev.token_sha256 = token_sha256(&t);
        tokens.devices.insert(dev.id.to_string(), t);
    }
    for r in &mut roster.responders {
        let t = token(seed, "resp", r.id.as_str());
        r.token_sha256 = Some(token_sha256(&t));
        tokens.responders.insert(r.id.to_string(), t);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_core::roster::{DeviceRecord, OperatorRecord};

    #[test]
    fn digests_match_tokens_and_tokens_depend_on_the_seed() {
        let mut roster = RosterFile {
            operators: vec![OperatorRecord {
                id: "OP1".into(),
                token_sha256: String::new(),
                roles: None,
            }],
            devices: vec![DeviceRecord {
                id: "GW1".into(),
                token_sha256: String::new(),
            }],
            ..RosterFile::default()
        };
        let a = issue(&mut roster.clone(), 1);
        let b = issue(&mut roster, 1);
        assert_eq!(a, b);
        assert_eq!(
            roster.operators[0].token_sha256,
            token_sha256(&a.operators["OP1"])
        );
        assert_eq!(roster.devices[0].token_sha256.len(), 64);
        let c = issue(&mut roster, 2);
        assert_ne!(a.devices["GW1"], c.devices["GW1"]);
        // The well-known digest of "abc".
        assert_eq!(
            token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
