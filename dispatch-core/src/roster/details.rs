//! An elder's details: who they are, for operators, and what the assigned responder needs at
//! the door.

use serde::{Deserialize, Serialize};

/// What a call centre works with about an elder. Operators see all of it; the responder
/// assigned to the elder's incident is told the name, address, phone, languages and
/// keyholders (an ambulance crew also the medical notes); an offer carries none of it, and
/// `family` is never sent to a responder. Each text is at most [`MAX_DETAIL_BYTES`], each list
/// at most [`MAX_DETAIL_ITEMS`] entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElderDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Street, number, flat, and how to find the door.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Languages the person speaks, e.g. `pt-BR`, `zh-CN`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// Conditions, medication, allergies (for operators and ambulance crews).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_notes: Option<String>,
    /// Who holds a key, and how to reach them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyholders: Vec<String>,
}

/// Longest text in [`ElderDetails`], in bytes.
pub const MAX_DETAIL_BYTES: usize = 1_000;
/// Most entries in a list of [`ElderDetails`] (and in `family`).
pub const MAX_DETAIL_ITEMS: usize = 20;

impl ElderDetails {
    pub fn is_empty(&self) -> bool {
        *self == ElderDetails::default()
    }

    /// The first field over its bound, named, if any.
    pub(crate) fn check(&self, family: &[String]) -> Result<(), String> {
        let texts = [
            ("details.name", &self.name),
            ("details.address", &self.address),
            ("details.phone", &self.phone),
            ("details.medical_notes", &self.medical_notes),
        ];
        for (field, v) in texts {
            if v.as_ref().is_some_and(|t| t.len() > MAX_DETAIL_BYTES) {
                return Err(format!("{field} is over {MAX_DETAIL_BYTES} bytes"));
            }
        }
        let lists = [
            ("details.languages", &self.languages[..]),
            ("details.keyholders", &self.keyholders[..]),
            ("family", family),
        ];
        for (field, v) in lists {
            if v.len() > MAX_DETAIL_ITEMS {
                return Err(format!("{field} has over {MAX_DETAIL_ITEMS} entries"));
            }
            if v.iter().any(|t| t.len() > MAX_DETAIL_BYTES) {
                return Err(format!(
                    "an entry of {field} is over {MAX_DETAIL_BYTES} bytes"
                ));
            }
        }
        Ok(())
    }
}
