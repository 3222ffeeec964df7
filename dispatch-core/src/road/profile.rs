//! The travel profiles (DESIGN §3): which OSM ways a car or a walker may use, in which
//! direction, and how fast. Pure functions of a way's tags and the [`RoadConfig`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A travel profile: the road graph a responder moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Car,
    Foot,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Car, Profile::Foot];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Car => "car",
            Profile::Foot => "foot",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile name that is neither `car` nor `foot`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?}: expected \"car\" or \"foot\"")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Profile, UnknownProfile> {
        match s {
            "car" => Ok(Profile::Car),
            "foot" => Ok(Profile::Foot),
            other => Err(UnknownProfile(other.to_string())),
        }
    }
}

/// Both profiles' rules. The defaults are DESIGN §3; a deployment may change any of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoadConfig {
    /// Car: the `highway` classes a car may use, with the speed (km/h) when `maxspeed` is
    /// absent or unreadable.
    pub car_class_kmh: BTreeMap<String, f64>,
    /// Car: classes that are one-way even without a `oneway` tag (unless `oneway=no`).
    pub car_implied_oneway: Vec<String>,
    /// Car: values of `access`, `motor_vehicle` or `motorcar` that close a way to cars.
    pub car_closed_access: Vec<String>,
    /// Foot: the `highway` classes a walker may use.
    pub foot_classes: Vec<String>,
    /// Foot: values of `access` that close a way to walkers unless `foot=yes|designated`.
    pub foot_closed_access: Vec<String>,
    /// The walking speed the foot graph is built at; a responder walking at `walk_kmh` takes
    /// `time * foot_kmh / walk_kmh`.
    pub foot_kmh: f64,
    /// Speed factor on `highway=steps` (DESIGN: half speed).
    pub steps_factor: f64,
    /// A position further than this from every kept road is an error, not a silent snap.
    pub snap_limit_m: f64,
}

impl Default for RoadConfig {
    fn default() -> RoadConfig {
        let mut car = BTreeMap::new();
        for (class, kmh) in [
            ("motorway", 90.0),
            ("trunk", 70.0),
            ("primary", 55.0),
            ("secondary", 45.0),
            ("tertiary", 40.0),
        ] {
            car.insert(class.to_string(), kmh);
            car.insert(format!("{class}_link"), 30.0);
        }
        for (class, kmh) in [
            ("unclassified", 30.0),
            ("residential", 25.0),
            ("living_street", 10.0),
            ("service", 15.0),
            ("road", 20.0),
        ] {
            car.insert(class.to_string(), kmh);
        }
        let mut foot: Vec<String> = car
            .keys()
            .filter(|c| !c.starts_with("motorway") && !c.starts_with("trunk"))
            .cloned()
            .collect();
        foot.extend(
            [
                "footway",
                "path",
                "pedestrian",
                "steps",
                "track",
                "cycleway",
                "bridleway",
                "corridor",
            ]
            .map(String::from),
        );
        RoadConfig {
            car_class_kmh: car,
            car_implied_oneway: vec!["motorway".into(), "motorway_link".into()],
            car_closed_access: vec!["no".into(), "private".into()],
            foot_classes: foot,
            foot_closed_access: vec!["no".into(), "private".into()],
            foot_kmh: 4.5,
            steps_factor: 0.5,
            snap_limit_m: 1000.0,
        }
    }
}

/// What a profile makes of one way: the directions it may be travelled and its speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WayRule {
    /// Along the way's node order.
    pub forward: bool,
    /// Against it.
    pub backward: bool,
    pub speed_kmh: f64,
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl RoadConfig {
    /// The rule for `profile` on a way with these tags, or `None` if the profile may not use it.
    pub(crate) fn rule(&self, profile: Profile, tags: &[(String, String)]) -> Option<WayRule> {
        match profile {
            Profile::Car => self.car_rule(tags),
            Profile::Foot => self.foot_rule(tags),
        }
    }

    fn car_rule(&self, tags: &[(String, String)]) -> Option<WayRule> {
        let highway = tag(tags, "highway")?;
        let class_kmh = *self.car_class_kmh.get(highway)?;
        if tag(tags, "area") == Some("yes") {
            return None;
        }
        let closed = ["access", "motor_vehicle", "motorcar"]
            .iter()
            .any(|k| tag(tags, k).is_some_and(|v| self.car_closed_access.iter().any(|c| c == v)));
        if closed {
            return None;
        }
        let (forward, backward) = match tag(tags, "oneway") {
            Some("yes" | "true" | "1") => (true, false),
            Some("-1") => (false, true),
            Some("no") => (true, true),
            _ if tag(tags, "junction") == Some("roundabout") => (true, false),
            _ if self.car_implied_oneway.iter().any(|c| c == highway) => (true, false),
            _ => (true, true),
        };
        let speed_kmh = tag(tags, "maxspeed")
            .and_then(parse_maxspeed_kmh)
            .unwrap_or(class_kmh);
        Some(WayRule {
            forward,
            backward,
            speed_kmh,
        })
    }

    fn foot_rule(&self, tags: &[(String, String)]) -> Option<WayRule> {
        let highway = tag(tags, "highway")?;
        if !self.foot_classes.iter().any(|c| c == highway) || tag(tags, "area") == Some("yes") {
            return None;
        }
        let foot = tag(tags, "foot");
        if foot == Some("no") {
            return None;
        }
        let foot_allowed = matches!(foot, Some("yes" | "designated"));
        let access_closed =
            tag(tags, "access").is_some_and(|v| self.foot_closed_access.iter().any(|c| c == v));
        if access_closed && !foot_allowed {
            return None;
        }
        let speed_kmh = if highway == "steps" {
            self.foot_kmh * self.steps_factor
        } else {
            self.foot_kmh
        };
        Some(WayRule {
            forward: true,
            backward: true,
            speed_kmh,
        })
    }
}

/// `maxspeed` in km/h: `"50"`, `"50 km/h"`, `"50kmh"`, `"25 mph"`. Anything else (`"none"`,
/// `"BR:urban"`, `"50;30"`, zero or negative) is unreadable and the caller falls back to the
/// class default.
pub(crate) fn parse_maxspeed_kmh(raw: &str) -> Option<f64> {
    let s = raw.trim();
    let (number, factor) = if let Some(n) = s.strip_suffix("mph") {
        (n, 1.609_344)
    } else if let Some(n) = s.strip_suffix("km/h") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("kmh").or_else(|| s.strip_suffix("kph")) {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let kmh = number.trim().parse::<f64>().ok()? * factor;
    (kmh.is_finite() && kmh > 0.0).then_some(kmh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn maxspeed_forms() {
        assert_eq!(parse_maxspeed_kmh("50"), Some(50.0));
        assert_eq!(parse_maxspeed_kmh("40 km/h"), Some(40.0));
        assert_eq!(parse_maxspeed_kmh("40km/h"), Some(40.0));
        let mph = parse_maxspeed_kmh("25 mph").unwrap();
        assert!((mph - 40.2336).abs() < 1e-9, "{mph}");
        for junk in ["none", "BR:urban", "50;30", "", "0", "-5", "fast", "NaN"] {
            assert_eq!(parse_maxspeed_kmh(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn car_one_way_forms() {
        let cfg = RoadConfig::default();
        let dirs = |t: &[(&str, &str)]| {
            let r = cfg.rule(Profile::Car, &tags(t)).unwrap();
            (r.forward, r.backward)
        };
        assert_eq!(dirs(&[("highway", "residential")]), (true, true));
        for v in ["yes", "true", "1"] {
            assert_eq!(
                dirs(&[("highway", "residential"), ("oneway", v)]),
                (true, false)
            );
        }
        assert_eq!(
            dirs(&[("highway", "residential"), ("oneway", "-1")]),
            (false, true)
        );
        assert_eq!(
            dirs(&[("highway", "primary"), ("junction", "roundabout")]),
            (true, false)
        );
        assert_eq!(dirs(&[("highway", "motorway")]), (true, false));
        assert_eq!(dirs(&[("highway", "motorway_link")]), (true, false));
        assert_eq!(
            dirs(&[("highway", "motorway"), ("oneway", "no")]),
            (true, true)
        );
    }

    #[test]
    fn car_speeds_and_exclusions() {
        let cfg = RoadConfig::default();
        let speed = |t: &[(&str, &str)]| cfg.rule(Profile::Car, &tags(t)).map(|r| r.speed_kmh);
        assert_eq!(speed(&[("highway", "residential")]), Some(25.0));
        assert_eq!(speed(&[("highway", "primary_link")]), Some(30.0));
        assert_eq!(
            speed(&[("highway", "residential"), ("maxspeed", "60")]),
            Some(60.0)
        );
        assert_eq!(
            speed(&[("highway", "residential"), ("maxspeed", "junk")]),
            Some(25.0)
        );
        assert_eq!(speed(&[("highway", "footway")]), None);
        assert_eq!(speed(&[("highway", "service"), ("area", "yes")]), None);
        for key in ["access", "motor_vehicle", "motorcar"] {
            for v in ["no", "private"] {
                assert_eq!(
                    speed(&[("highway", "service"), (key, v)]),
                    None,
                    "{key}={v}"
                );
            }
        }
        assert_eq!(
            speed(&[("highway", "service"), ("access", "yes")]),
            Some(15.0)
        );
    }

    #[test]
    fn foot_rules() {
        let cfg = RoadConfig::default();
        let rule = |t: &[(&str, &str)]| cfg.rule(Profile::Foot, &tags(t));
        assert!(rule(&[("highway", "motorway")]).is_none());
        assert!(rule(&[("highway", "trunk_link")]).is_none());
        let r = rule(&[("highway", "residential"), ("oneway", "yes")]).unwrap();
        assert!(r.forward && r.backward && r.speed_kmh == 4.5);
        assert_eq!(rule(&[("highway", "steps")]).unwrap().speed_kmh, 2.25);
        assert!(rule(&[("highway", "footway")]).is_some());
        assert!(rule(&[("highway", "footway"), ("foot", "no")]).is_none());
        assert!(rule(&[("highway", "footway"), ("access", "private")]).is_none());
        assert!(rule(&[("highway", "footway"), ("access", "no"), ("foot", "yes")]).is_some());
        assert!(rule(&[
            ("highway", "service"),
            ("access", "private"),
            ("foot", "designated")
        ])
        .is_some());
        assert!(rule(&[("highway", "pedestrian"), ("area", "yes")]).is_none());
        assert!(rule(&[("highway", "proposed")]).is_none());
        assert!(rule(&[("building", "yes")]).is_none());
    }

    #[test]
    fn profile_parses() {
        assert_eq!("car".parse::<Profile>(), Ok(Profile::Car));
        assert_eq!("foot".parse::<Profile>(), Ok(Profile::Foot));
        assert!("bike".parse::<Profile>().is_err());
    }
}
