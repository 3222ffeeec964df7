//! Identifiers. Roster ids are the deployment's own strings; ids the engine mints are numbers.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub Arc<str>);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(Arc::from(s))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(Arc::from(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

string_id!(
    /// A responder from the roster (volunteer, grid worker, ambulance, service staff).
    ResponderId
);
string_id!(
    /// An older person from the roster.
    ElderId
);
string_id!(
    /// A grid: the small area one grid worker knows by heart.
    GridId
);
string_id!(
    /// An operator at a console.
    OperatorId
);
string_id!(
    /// A device gateway (wearables, help buttons).
    DeviceId
);
string_id!(
    /// The sender's unique key for an alert: a resend with the same key is the same alert.
    AlertId
);
number_id!(
    /// An incident, minted by the engine in order (so replay mints the same ids).
    IncidentId,
    "I"
);
number_id!(
    /// One offer of one incident to one responder, minted by the engine.
    OfferId,
    "O"
);

/// A fast, non-cryptographic hasher (the multiply-rotate scheme of rustc's FxHash) for maps
/// that are only looked up, never iterated in an order that matters: the id → slot lookup
/// on every location update, and the vertex, segment and source numbers of live coverage.
/// Ids come from the roster and authenticated sessions and numbers from the engine itself,
/// so hash flooding is not a concern.
#[derive(Default)]
pub struct IdHasher(u64);

/// FxHash's multiplier.
const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.write(&[b]);
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(K);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map hashed with [`IdHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_their_bare_values() {
        assert_eq!(
            serde_json::to_string(&ResponderId::from("V1")).unwrap(),
            "\"V1\""
        );
        assert_eq!(serde_json::to_string(&IncidentId(7)).unwrap(), "7");
        assert_eq!(IncidentId(7).to_string(), "I7");
        assert_eq!(OfferId(3).to_string(), "O3");
        let back: ElderId = serde_json::from_str("\"E9\"").unwrap();
        assert_eq!(back.as_str(), "E9");
    }
}
