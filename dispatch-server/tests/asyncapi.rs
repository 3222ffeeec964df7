//! Keeps `docs/asyncapi.json` true to the code: every client message type, every server frame
//! type and every console event type has a message in the document, samples of the real
//! frames (through the real encoders) match their documented payload schemas, and every
//! example in the document matches its schema (client examples also parse with
//! `wire::parse_client`).

use dispatch_core::event::{Event, EventRecord, RosterChange, RosterEntry, WithdrawReason};
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{AlertId, ElderId, IncidentId, OfferId, OperatorId, ResponderId};
use dispatch_core::model::{
    Actor, AlertKind, AssignmentRole, Availability, ServiceKind, Sla, TravelMode,
};
use dispatch_core::time::Timestamp;
use dispatch_core::timebank::LedgerEntry;
use dispatch_server::wire::{
    self, AlertAccepted, AlertAcceptedTag, Role, ServerMessage, CLIENT_TYPES,
};
use serde_json::{json, Value};

fn doc() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/asyncapi.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Follows a local `$ref` (`#/a/b/c`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {r}"));
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(doc, target)
        }
        None => v,
    }
}

/// Which side a documented message is on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    /// Client → server (`receive` operations).
    Client,
    /// Server → client frames other than console events.
    Server,
    /// Console event frames (payload requires `seq` and `at`).
    Event,
}

/// Every message of every operation: (side, message key, resolved message).
fn messages(doc: &Value) -> Vec<(Side, String, &Value)> {
    let mut out = Vec::new();
    let ops = doc["operations"].as_object().expect("operations");
    for (name, op) in ops {
        let action = op["action"].as_str().expect("action");
        for m in op["messages"].as_array().expect("messages") {
            let key = m["$ref"].as_str().expect("$ref").to_string();
            let msg = resolve(doc, m);
            let payload = resolve(doc, &msg["payload"]);
            let required: Vec<&str> = payload["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let side = match action {
                "receive" => Side::Client,
                "send" if required.contains(&"seq") && required.contains(&"at") => Side::Event,
                "send" => Side::Server,
                other => panic!("operation {name}: unknown action {other}"),
            };
            out.push((side, key, msg));
        }
    }
    out
}

/// The `const` of the `type` property of a message's payload.
fn type_const<'a>(doc: &'a Value, msg: &'a Value) -> &'a str {
    let payload = resolve(doc, &msg["payload"]);
    payload["properties"]["type"]["const"]
        .as_str()
        .unwrap_or_else(|| panic!("payload without a `type` const: {payload}"))
}

/// The payload schema of the message of `side` whose `type` is `ty`; panics when missing.
fn payload_of<'a>(doc: &'a Value, side: Side, ty: &str) -> &'a Value {
    let found: Vec<_> = messages(doc)
        .into_iter()
        .filter(|(s, _, m)| *s == side && type_const(doc, m) == ty)
        .collect();
    assert!(
        !found.is_empty(),
        "docs/asyncapi.json has no {side:?} message with type `{ty}`"
    );
    resolve(doc, &found[0].2["payload"])
}

/// A small JSON Schema check, enough for the keywords the document uses. Returns the
/// problems found, each with the path of the value.
fn check(doc: &Value, schema: &Value, v: &Value, path: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let passing = options
            .iter()
            .filter(|s| {
                let mut p = Vec::new();
                check(doc, s, v, path, &mut p);
                p.is_empty()
            })
            .count();
        if passing != 1 {
            problems.push(format!("{path}: {v} matches {passing} of oneOf"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            problems.push(format!("{path}: {v} is not {c}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            problems.push(format!("{path}: {v} is not one of {e:?}"));
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            other => panic!("unsupported type {other}"),
        });
        if !ok {
            problems.push(format!("{path}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                problems.push(format!("{path}: {n} < {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                problems.push(format!("{path}: {n} > {max}"));
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    problems.push(format!("{path}: missing required `{r}`"));
                }
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, val, &format!("{path}.{k}"), problems),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{path}: unexpected field `{k}`"))
                }
                None => {}
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                problems.push(format!("{path}: fewer than {min} items"));
            }
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
            if (items.len() as u64) > max {
                problems.push(format!("{path}: more than {max} items"));
            }
        }
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(doc, s, item, &format!("{path}[{i}]"), problems);
            }
        }
    }
}

/// Checks a frame against a payload schema, and (stricter than the schema says, because the
/// document must name every field the server really sends) that every field of the frame is
/// a documented property.
fn assert_frame_matches(doc: &Value, payload: &Value, frame: &Value) {
    let mut problems = Vec::new();
    check(doc, payload, frame, "$", &mut problems);
    let props = payload["properties"].as_object().expect("properties");
    for k in frame.as_object().expect("a frame is an object").keys() {
        if !props.contains_key(k) {
            problems.push(format!("$: field `{k}` is not documented"));
        }
    }
    assert!(
        problems.is_empty(),
        "frame {frame} does not match docs/asyncapi.json:\n{}",
        problems.join("\n")
    );
}

fn here() -> LatLon {
    LatLon {
        lat: -30.03,
        lon: -51.22,
    }
}

/// One sample of each `ServerMessage` variant.
fn server_samples() -> Vec<ServerMessage> {
    let route = vec![
        LatLon {
            lat: -30.0284,
            lon: -51.2201,
        },
        here(),
    ];
    vec![
        ServerMessage::Welcome {
            role: Role::Responder,
            id: "V1".into(),
            protocol: "dispatch.v1",
        },
        ServerMessage::Ack {
            re: Some(json!("a")),
        },
        ServerMessage::Pong { re: Some(json!(1)) },
        ServerMessage::error(Some(json!(2)), "offer_closed", "too late"),
        ServerMessage::Error {
            re: Some(json!("a")),
            code: "invalid_transition",
            message: "responder V1 cannot go available while resting, until 1795637865400ms".into(),
            incident_id: None,
            resting_until: Some(Timestamp(1_795_637_865_400)),
        },
        ServerMessage::Offer {
            offer_id: OfferId(12),
            incident_id: IncidentId(7),
            kind: AlertKind::Help,
            service: Some(ServiceKind::Medical),
            priority: 3,
            position: here(),
            eta_s: 142,
            distance_m: 178,
            route: route.clone(),
            expires_at: Timestamp(1_795_636_095_000),
        },
        ServerMessage::OfferWithdrawn {
            offer_id: OfferId(13),
            incident_id: IncidentId(7),
            reason: "expired",
        },
        ServerMessage::Assigned {
            incident_id: IncidentId(7),
            role: AssignmentRole::Community,
            elder_id: Some(ElderId::from("E1")),
            elder: Some(dispatch_server::wire::AtTheDoor {
                name: Some("Dona Maria".into()),
                address: Some("Rua da Praia 100, ap. 3".into()),
                phone: None,
                languages: vec!["pt-BR".into()],
                keyholders: vec!["Ana (neighbour, ap. 4)".into()],
                medical_notes: None,
            }),
            kind: None,
            service: None,
            priority: None,
            position: None,
            eta_s: 10,
            route,
        },
        ServerMessage::IncidentClosed {
            incident_id: IncidentId(7),
            status: "cancelled",
        },
        ServerMessage::TimeBankCredited {
            incident_id: IncidentId(7),
            minutes: 24,
        },
        ServerMessage::KinUpdate(wire::KinNews {
            incident_id: IncidentId(7),
            elder_id: ElderId::from("E1"),
            stage: "coming",
            kind: AlertKind::Fall,
            service: None,
            at: Timestamp(1_000),
            responder_kind: Some(dispatch_core::model::ResponderKind::Volunteer),
            eta_s: Some(95),
        }),
        ServerMessage::KinUpdate(wire::KinNews {
            incident_id: IncidentId(7),
            elder_id: ElderId::from("E1"),
            stage: "opened",
            kind: AlertKind::Help,
            service: Some(ServiceKind::Rescue),
            at: Timestamp(900),
            responder_kind: None,
            eta_s: None,
        }),
        ServerMessage::Snapshot {
            re: Some(json!("s")),
            seq: 3,
            reason: "lagged",
            state: json!({"last_seq": 3, "incidents": [], "responders": [],
                "sla_ms": {"first_accept": 30000, "community_on_scene": 180000, "ambulance_on_scene": 660000}}),
        },
        ServerMessage::Resumed {
            re: None,
            from_seq: 3,
        },
        ServerMessage::RespondersMoved {
            at: Timestamp(1_795_636_065_400),
            moves: vec![
                wire::MovedEntry {
                    responder_id: ResponderId::from("V1"),
                    position: here(),
                    at: Timestamp(1_795_636_065_310),
                },
                wire::MovedEntry {
                    responder_id: ResponderId::from("V2"),
                    position: here(),
                    at: Timestamp(1_795_636_065_400),
                },
            ],
        },
        ServerMessage::Candidates {
            re: Some(json!("c")),
            incident_id: IncidentId(7),
            candidates: json!([{"responder_id": "V1", "kind": "volunteer", "travel_mode": "foot",
                "eta_s": 142, "distance_m": 178, "familiar": true}]),
        },
        ServerMessage::PeopleResult {
            re: Some(json!("p")),
            status: 201,
            body: json!({"id": "V9", "kind": "volunteer", "travel_mode": "foot",
                "home": {"lat": -30.03, "lon": -51.22}, "skills": [], "has_token": false}),
        },
    ]
}

/// The variant number of a `ServerMessage`. The match has no wildcard: a new variant does not
/// compile until it is numbered here (and then the coverage assertion asks for a sample).
fn server_variant(m: &ServerMessage) -> usize {
    match m {
        ServerMessage::Welcome { .. } => 0,
        ServerMessage::Ack { .. } => 1,
        ServerMessage::Pong { .. } => 2,
        ServerMessage::Error { .. } => 3,
        ServerMessage::Offer { .. } => 4,
        ServerMessage::OfferWithdrawn { .. } => 5,
        ServerMessage::Assigned { .. } => 6,
        ServerMessage::IncidentClosed { .. } => 7,
        ServerMessage::TimeBankCredited { .. } => 8,
        ServerMessage::Snapshot { .. } => 9,
        ServerMessage::Resumed { .. } => 10,
        ServerMessage::Candidates { .. } => 11,
        ServerMessage::RespondersMoved { .. } => 12,
        ServerMessage::PeopleResult { .. } => 13,
        ServerMessage::KinUpdate(_) => 14,
    }
}
const SERVER_VARIANTS: usize = 15;

/// One sample of each `Event` variant.
fn event_samples() -> Vec<Event> {
    let i = IncidentId(7);
    let o = OfferId(12);
    let r = || ResponderId::from("V1");
    vec![
        Event::IncidentOpened {
            incident_id: i,
            alert_id: AlertId::from("GW1-1"),
            elder_id: ElderId::from("E1"),
            kind: AlertKind::Fall,
            service: None,
            priority: 5,
            position: here(),
            reason: "fall".into(),
            needs_operator: Some(dispatch_core::incident::NeedsOperator {
                code: dispatch_core::incident::Undispatchable::OffMap,
                message: "position 10,10 is off the map".into(),
            }),
        },
        Event::AlertJoined {
            incident_id: i,
            alert_id: AlertId::from("GW1-2"),
        },
        Event::OfferSent {
            offer_id: o,
            incident_id: i,
            responder_id: r(),
            wave: 1,
            eta_s: 100,
            distance_m: 120,
            route: vec![here()],
            expires_at: Timestamp(2_000),
            reason: "nearest".into(),
        },
        Event::OfferDeclined {
            offer_id: o,
            incident_id: i,
            responder_id: r(),
        },
        Event::OfferExpired {
            offer_id: o,
            incident_id: i,
            responder_id: r(),
        },
        Event::OfferWithdrawn {
            offer_id: o,
            incident_id: i,
            responder_id: r(),
            reason: WithdrawReason::ResponderUnavailable,
        },
        Event::Assigned {
            incident_id: i,
            responder_id: r(),
            role: AssignmentRole::Ambulance,
            eta_s: 300,
            route: vec![],
            reason: "direct".into(),
        },
        Event::NoResponderAvailable {
            incident_id: i,
            reason: "nobody".into(),
        },
        Event::Escalated {
            incident_id: i,
            reason: "wave 2".into(),
        },
        Event::SlaBreached {
            incident_id: i,
            sla: Sla::CommunityOnScene,
            deadline: Timestamp(3_000),
        },
        Event::ResponderArrived {
            incident_id: i,
            responder_id: r(),
            role: AssignmentRole::Community,
        },
        Event::IncidentResolved {
            incident_id: i,
            by: Actor::Operator(OperatorId::from("OP1")),
            reason: "done".into(),
        },
        Event::IncidentCancelled {
            incident_id: i,
            by: Actor::Engine,
            reason: "cancelled".into(),
        },
        Event::ResponderMoved {
            responder_id: r(),
            position: here(),
        },
        Event::ResponderAvailability {
            responder_id: r(),
            status: Availability::OffDuty,
        },
        Event::TimeBankCredited {
            responder_id: r(),
            incident_id: i,
            minutes: 24,
        },
        Event::CheckedIn {
            elder_id: ElderId::from("E1"),
        },
        Event::RosterChanged {
            entry: RosterEntry::Responder,
            id: "V7".into(),
            change: RosterChange::TokenIssued,
            by: Actor::Operator(OperatorId::from("OP1")),
        },
        Event::TimeBankRedeemed {
            responder_id: r(),
            entry: LedgerEntry::Redemption {
                at: Timestamp(4_000),
                minutes: 30,
                note: "a haircut for her mother".into(),
                by: OperatorId::from("OP1"),
                override_negative: false,
                balance_minutes: 12,
            },
        },
        Event::Unassigned {
            incident_id: i,
            responder_id: r(),
            reason: "V7 was retired: somebody else is asked".into(),
        },
        Event::CareVisitMissed {
            incident_id: i,
            elder_id: ElderId::from("E1"),
            item_id: "weekly-visit".into(),
            due_by: Timestamp(4_000),
            planned_responder: Some(r()),
        },
        Event::CareVisitDone {
            incident_id: i,
            elder_id: ElderId::from("E1"),
            item_id: "daily-call".into(),
            due_by: Timestamp(4_000),
            on_time: false,
            done_by: Some(r()),
        },
        Event::RoadClosed {
            closure: dispatch_core::closures::RoadClosure {
                closure_id: "flood-1".into(),
                area: dispatch_core::road::ClosureArea::Line {
                    points: vec![here(), here()],
                    width_m: 20.0,
                },
                effect: dispatch_core::closures::ClosureEffect::Slow { factor: 2.5 },
                modes: vec![TravelMode::Car, TravelMode::Foot],
                starts_at: Some(Timestamp(5_000)),
                ends_at: Timestamp(9_000),
                reason: "flooded lane".into(),
            },
            by: Actor::Operator(OperatorId::from("OP1")),
            car_segments: 3,
            foot_segments: 4,
        },
        Event::RoadReopened {
            closure_id: "flood-1".into(),
            by: Actor::Engine,
            expired: true,
        },
    ]
}

/// The variant number of an `Event` (no wildcard, as for [`server_variant`]).
fn event_variant(e: &Event) -> usize {
    match e {
        Event::IncidentOpened { .. } => 0,
        Event::AlertJoined { .. } => 1,
        Event::OfferSent { .. } => 2,
        Event::OfferDeclined { .. } => 3,
        Event::OfferExpired { .. } => 4,
        Event::OfferWithdrawn { .. } => 5,
        Event::Assigned { .. } => 6,
        Event::NoResponderAvailable { .. } => 7,
        Event::Escalated { .. } => 8,
        Event::SlaBreached { .. } => 9,
        Event::ResponderArrived { .. } => 10,
        Event::IncidentResolved { .. } => 11,
        Event::IncidentCancelled { .. } => 12,
        Event::ResponderMoved { .. } => 13,
        Event::ResponderAvailability { .. } => 14,
        Event::TimeBankCredited { .. } => 15,
        Event::CheckedIn { .. } => 16,
        Event::RosterChanged { .. } => 17,
        Event::TimeBankRedeemed { .. } => 18,
        Event::Unassigned { .. } => 19,
        Event::CareVisitMissed { .. } => 20,
        Event::CareVisitDone { .. } => 21,
        Event::RoadClosed { .. } => 22,
        Event::RoadReopened { .. } => 23,
    }
}
const EVENT_VARIANTS: usize = 24;

#[test]
fn document_is_asyncapi_3_for_the_v1_socket() {
    let doc = doc();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["servers"]["dispatch"]["protocol"], "ws");
    assert_eq!(doc["servers"]["dispatch"]["host"], "127.0.0.1:8080");
    let channels = doc["channels"].as_object().expect("channels");
    assert!(
        channels.values().any(|c| c["address"] == "/v1/ws"),
        "no channel with address /v1/ws"
    );
    // Every operation's messages resolve and belong to its channel.
    for (name, op) in doc["operations"].as_object().expect("operations") {
        let channel = resolve(&doc, &op["channel"]);
        for m in op["messages"].as_array().expect("messages") {
            let r = m["$ref"].as_str().expect("$ref");
            assert!(
                r.starts_with("#/channels/"),
                "operation {name}: {r} is not a channel message"
            );
            let key = r.rsplit('/').next().unwrap();
            assert!(
                channel["messages"].get(key).is_some(),
                "operation {name}: {key} is not a message of its channel"
            );
            type_const(&doc, resolve(&doc, m));
        }
    }
}

#[test]
fn every_client_type_has_a_receive_message() {
    let doc = doc();
    for ty in CLIENT_TYPES {
        payload_of(&doc, Side::Client, ty);
    }
    // And nothing documented as a client message that the server would call unknown.
    for (side, key, m) in messages(&doc) {
        if side == Side::Client {
            let ty = type_const(&doc, m);
            assert!(
                CLIENT_TYPES.contains(&ty),
                "{key}: `{ty}` is not a client type"
            );
        }
    }
}

#[test]
fn every_server_frame_has_a_send_message_that_matches_it() {
    let doc = doc();
    let samples = server_samples();
    let mut covered: Vec<usize> = samples.iter().map(server_variant).collect();
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(
        covered,
        (0..SERVER_VARIANTS).collect::<Vec<_>>(),
        "a ServerMessage variant has no sample"
    );
    // `alert_accepted` is its own struct (also the HTTP 202 body), serialized as the session
    // serializes it.
    let accepted = AlertAccepted {
        kind: AlertAcceptedTag::AlertAccepted,
        re: Some(json!("a1")),
        alert_id: AlertId::from("GW1-1"),
        incident_id: IncidentId(1),
        duplicate: false,
        merged: true,
    };
    // An alert kept for an operator is answered with an `error` naming its incident.
    let kept = AlertAccepted::reply(
        Some(json!("a2")),
        AlertId::from("GW1-2"),
        IncidentId(2),
        false,
        false,
        Some(&dispatch_core::incident::NeedsOperator {
            code: dispatch_core::incident::Undispatchable::UnknownElder,
            message: "unknown elder E404".into(),
        }),
    )
    .expect_err("a problem is an error frame");
    let kept = *kept;
    let texts = samples
        .iter()
        .chain([&kept])
        .map(ServerMessage::encode)
        .chain([serde_json::to_string(&accepted).expect("JSON")]);
    check_frames(&doc, Side::Server, texts, "a frame the server sends");
}

/// Each encoded frame matches the documented payload of its `type` on `side`, and every
/// message the document lists on `side` is one of the frames (`what` names them in errors).
fn check_frames(doc: &Value, side: Side, texts: impl IntoIterator<Item = String>, what: &str) {
    let mut documented = Vec::new();
    for text in texts {
        let frame: Value = serde_json::from_str(&text).expect("frame is JSON");
        let ty = frame["type"]
            .as_str()
            .expect("frame has a type")
            .to_string();
        assert_frame_matches(doc, payload_of(doc, side, &ty), &frame);
        documented.push(ty);
    }
    for (s, key, m) in messages(doc) {
        if s == side {
            let ty = type_const(doc, m);
            assert!(
                documented.iter().any(|d| d == ty),
                "{key}: `{ty}` is not {what}"
            );
        }
    }
}

#[test]
fn every_event_has_a_console_message_that_matches_its_frame() {
    let doc = doc();
    let samples = event_samples();
    let mut covered: Vec<usize> = samples.iter().map(event_variant).collect();
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(
        covered,
        (0..EVENT_VARIANTS).collect::<Vec<_>>(),
        "an Event variant has no sample"
    );
    let texts = samples.into_iter().enumerate().map(|(n, event)| {
        wire::encode_event(&EventRecord {
            seq: n as u64 + 1,
            at: Timestamp(1_795_636_065_358),
            event,
        })
    });
    check_frames(&doc, Side::Event, texts, "an Event");
}

#[test]
fn examples_match_their_schemas_and_client_examples_parse() {
    let doc = doc();
    let mut client_examples = 0;
    for (side, key, m) in messages(&doc) {
        let payload = resolve(&doc, &m["payload"]);
        let ty = type_const(&doc, m);
        for ex in m["examples"].as_array().into_iter().flatten() {
            let ex = &ex["payload"];
            let mut problems = Vec::new();
            check(&doc, payload, ex, "$", &mut problems);
            assert!(
                problems.is_empty(),
                "{key} example {ex}:\n{}",
                problems.join("\n")
            );
            if side == Side::Client {
                client_examples += 1;
                let incoming = wire::parse_client(&ex.to_string());
                assert_eq!(incoming.id.as_ref(), ex.get("id"), "{key}: {ex}");
                let parsed = incoming
                    .message
                    .unwrap_or_else(|e| panic!("{key} example {ex} does not parse: {e}"));
                // The parsed message is of the documented type (its variant name, in snake
                // case, is the wire name: `CancelAlert { .. }` is `cancel_alert`).
                let variant = format!("{parsed:?}");
                let variant = variant
                    .split(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap_or_default();
                assert_eq!(snake(variant), ty, "{key}: {ex} parsed as {parsed:?}");
            }
        }
    }
    assert!(
        client_examples >= CLIENT_TYPES.len(),
        "every client message should have an example"
    );
}

/// `CancelAlert` → `cancel_alert`.
fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
