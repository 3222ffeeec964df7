//! Operator roles: what an operator may do. A roster entry may list `roles`; an entry without
//! the field (every roster written before roles existed) has every right, so old rosters keep
//! working unchanged.
//!
//! | role | may |
//! | --- | --- |
//! | `dispatch` | the operator stream and incident actions (subscribe, assign, cancel, resolve, candidates; `GET /v1/incidents/{id}`) |
//! | `people` | people management (`/v1/responders`, `/v1/elders`, `/v1/grids`, `/v1/operators`, `/v1/devices`, tokens); so it can also grant roles |
//! | `care` | the time bank: statements and redemptions |
//!
//! The roster never holds operators of whom none has `people` (nobody could manage people any
//! more): the file is refused, and retiring or restricting the last one is refused.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ids::OperatorId;

/// One right an operator may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    Dispatch,
    People,
    Care,
}

impl OperatorRole {
    /// Every role, in the order they are documented.
    pub const ALL: [OperatorRole; 3] = [
        OperatorRole::Dispatch,
        OperatorRole::People,
        OperatorRole::Care,
    ];

    /// The name a roster file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Dispatch => "dispatch",
            OperatorRole::People => "people",
            OperatorRole::Care => "care",
        }
    }

    /// The role a roster file names, if it is one.
    pub fn parse(name: &str) -> Option<OperatorRole> {
        OperatorRole::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The set of roles an operator holds (a small bit set: cheap to copy into every check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights(u8);

impl Rights {
    /// Every right: an operator entry without `roles`.
    pub const ALL: Rights = Rights(0b111);

    /// The rights of a roster entry's `roles` (absent: every right). An empty list, an unknown
    /// name or a name listed twice is refused, with a message that names the field.
    pub fn of(roles: Option<&[String]>) -> Result<Rights, String> {
        let Some(roles) = roles else {
            return Ok(Rights::ALL);
        };
        if roles.is_empty() {
            return Err(
                "roles: an empty list gives no right at all (omit `roles` for every right)".into(),
            );
        }
        let mut rights = Rights::default();
        for name in roles {
            let Some(role) = OperatorRole::parse(name) else {
                return Err(format!(
                    "roles: unknown role `{name}` (roles are {})",
                    Rights::ALL.names().join(", ")
                ));
            };
            if rights.has(role) {
                return Err(format!("roles: `{name}` is listed twice"));
            }
            rights.0 |= role.bit();
        }
        Ok(rights)
    }

    pub fn has(self, role: OperatorRole) -> bool {
        self.0 & role.bit() != 0
    }

    /// The names of the roles held, in documented order.
    pub fn names(self) -> Vec<&'static str> {
        OperatorRole::ALL
            .into_iter()
            .filter(|r| self.has(*r))
            .map(OperatorRole::as_str)
            .collect()
    }
}

/// Operator id → rights, shared like the token table: the server checks a request against the
/// table the engine's roster holds at that moment, and a change makes a new table.
pub type RightsTable = Arc<BTreeMap<OperatorId, Rights>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_roles_field_is_every_right() {
        let all = Rights::of(None).unwrap();
        assert_eq!(all, Rights::ALL);
        for r in OperatorRole::ALL {
            assert!(all.has(r), "{r}");
        }
        assert_eq!(all.names(), ["dispatch", "people", "care"]);
    }

    #[test]
    fn listed_roles_are_the_only_rights() {
        let d = Rights::of(Some(&names(&["dispatch"]))).unwrap();
        assert!(d.has(OperatorRole::Dispatch));
        assert!(!d.has(OperatorRole::People) && !d.has(OperatorRole::Care));
        let pc = Rights::of(Some(&names(&["care", "people"]))).unwrap();
        assert_eq!(pc.names(), ["people", "care"]);
    }

    #[test]
    fn bad_roles_are_refused_naming_the_field() {
        for (roles, says) in [
            (names(&[]), "empty"),
            (names(&["dispatch", "admin"]), "unknown role `admin`"),
            (names(&["care", "care"]), "`care` is listed twice"),
        ] {
            let e = Rights::of(Some(&roles)).unwrap_err();
            assert!(e.starts_with("roles: ") && e.contains(says), "{e}");
        }
    }
}
