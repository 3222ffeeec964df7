//! The variant names serde itself uses for an internally tagged enum, read from the derived
//! `Deserialize` impl: it is asked for a variant that cannot exist, and the list of expected
//! names it answers with is kept. Tests use this to check that the static names the code uses
//! for labels and lists (strum's `IntoStaticStr` and `VariantNames`) are exactly serde's wire
//! names, so one table (the enum) serves the wire, the metrics and the validation.

use serde::de::value::MapDeserializer;
use serde::de::{self, DeserializeOwned};
use std::fmt;

#[derive(Debug)]
struct Expected(Option<&'static [&'static str]>);

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected one of {:?}", self.0)
    }
}

impl std::error::Error for Expected {}

impl de::Error for Expected {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Expected(None)
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Expected(Some(expected))
    }
}

/// Serde's names of the variants of `T`, an enum tagged internally by `tag`
/// (`#[serde(tag = "type")]`), in declaration order; `None` if `T` is not such an enum.
pub fn variants<T: DeserializeOwned>(tag: &'static str) -> Option<&'static [&'static str]> {
    let probe = MapDeserializer::<_, Expected>::new(std::iter::once((tag, "\u{0}")));
    match T::deserialize(probe) {
        Err(Expected(names)) => names,
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::variants;
    use crate::command::Command;
    use crate::event::Event;
    use strum::VariantNames;

    #[test]
    fn event_and_command_names_are_serdes() {
        assert_eq!(variants::<Event>("type"), Some(Event::VARIANTS));
        assert_eq!(variants::<Command>("cmd"), Some(Command::VARIANTS));
        // And a value's static name is its serialized tag.
        let e = Event::CheckedIn {
            elder_id: "E1".into(),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], <&str>::from(&e));
    }

    #[test]
    fn the_probe_answers_none_for_a_wrong_tag_or_type() {
        assert_eq!(variants::<Event>("kind"), None);
        assert_eq!(variants::<String>("type"), None);
    }
}
