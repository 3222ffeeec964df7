//! The v1 wire protocol (DESIGN §5, `docs/protocol.md`): the only place the protocol's JSON
//! shapes are defined, and the conversions between them and the engine's `Command` / `Event`.
//!
//! Positions come in as `{"lat","lon","crs"?}` and are converted to WGS84 here, at the edge;
//! every position that goes out is WGS84. Responders get only what the job needs about an
//! elder (position, kind, service, priority), never names, family or care details.

use dispatch_core::command::{Alert, Command};
use dispatch_core::event::{Event, EventRecord, WithdrawReason};
use dispatch_core::geo::{Crs, LatLon};
use dispatch_core::ids::{AlertId, DeviceId, ElderId, GridId, IncidentId, OfferId, ResponderId};
use dispatch_core::model::{AlertKind, AssignmentRole, Availability, ResponderKind, ServiceKind};
use dispatch_core::roster::ElderDetails;
use dispatch_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A position as a device or phone reports it. `crs` defaults to WGS84.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WirePosition {
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs: Option<Crs>,
}

impl WirePosition {
    /// Checks the numbers and converts GCJ-02 / BD-09 to WGS84.
    pub fn to_wgs84(self) -> Result<LatLon, WireError> {
        let raw =
            LatLon::new(self.lat, self.lon).map_err(|e| WireError::bad_field(e.to_string()))?;
        self.crs
            .unwrap_or_default()
            .to_wgs84(raw)
            .validate()
            .map_err(|e| WireError::bad_field(e.to_string()))
    }
}

/// A console's filter (all parts optional; an event passes when it passes every given part).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// `[min_lat, min_lon, max_lat, max_lon]`, WGS84.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    /// Only incidents of elders (and responders) in these grids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grids: Option<Vec<GridId>>,
    /// Only incidents with at least this priority (1..=5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_priority: Option<u8>,
}

impl Filter {
    /// Whether something at `position`, in `grid`, with `priority` passes. Unknown parts pass:
    /// a console is never shown less than it asked for because the server lacks a detail.
    pub fn passes(
        &self,
        position: Option<LatLon>,
        grid: Option<&GridId>,
        priority: Option<u8>,
    ) -> bool {
        if let (Some([lat0, lon0, lat1, lon1]), Some(p)) = (self.bbox, position) {
            if p.lat < lat0 || p.lat > lat1 || p.lon < lon0 || p.lon > lon1 {
                return false;
            }
        }
        if let (Some(grids), Some(g)) = (&self.grids, grid) {
            if !grids.contains(g) {
                return false;
            }
        }
        if let (Some(min), Some(p)) = (self.min_priority, priority) {
            if p < min {
                return false;
            }
        }
        true
    }
}

/// Every message a client may send. Each may carry an `id` (any JSON value), echoed as `re`.
/// `<&'static str>::from(&msg)` is its wire `type` and [`CLIENT_TYPES`] lists them all (strum's
/// names follow serde's snake_case rule; `wire_names` tests that they agree).
#[derive(Debug, Clone, PartialEq, Deserialize, strum::IntoStaticStr, strum::VariantNames)]
#[serde(tag = "type", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ClientMessage {
    // --- device ---
    Alert(AlertBody),
    CancelAlert {
        alert_id: AlertId,
    },
    CheckIn {
        elder_id: ElderId,
    },
    // --- responder ---
    Location {
        position: WirePosition,
    },
    Availability {
        status: Availability,
    },
    Accept {
        offer_id: OfferId,
    },
    Decline {
        offer_id: OfferId,
    },
    Arrived {
        incident_id: IncidentId,
    },
    Complete {
        incident_id: IncidentId,
    },
    RequestAmbulance {
        incident_id: IncidentId,
    },
    // --- operator ---
    Subscribe {
        #[serde(default)]
        filter: Filter,
        /// The last sequence number this console saw; the server resumes after it if it can.
        #[serde(default)]
        last_seq: Option<u64>,
        /// `each` (default): one `responder_moved` event frame per move; `batched`: moves
        /// come in `responders_moved` frames, several responders at a time (docs/protocol.md).
        #[serde(default)]
        moves: MovesMode,
    },
    Assign {
        incident_id: IncidentId,
        responder_id: ResponderId,
    },
    Cancel {
        incident_id: IncidentId,
        #[serde(default)]
        reason: String,
    },
    Resolve {
        incident_id: IncidentId,
        #[serde(default)]
        note: String,
    },
    /// Who may be assigned to an incident now, with road ETAs (read-only).
    Candidates {
        incident_id: IncidentId,
        /// At most this many (default 10, capped at 50).
        #[serde(default)]
        limit: Option<usize>,
    },
    /// People management (an operator with the `people` role): the operations of
    /// `/v1/{responders,elders,grids,operators,devices}` over HTTP, answered by
    /// `people_result` (docs/protocol.md, "People management").
    People {
        op: crate::people::Op,
        entry: crate::people::Kind,
        /// The entry's id (every `op` but `create`, whose `body` holds it).
        #[serde(default)]
        entry_id: Option<String>,
        #[serde(default)]
        body: Option<Value>,
    },
    // --- any role ---
    Ping,
}

/// The wire names of [`ClientMessage`], to tell an unknown type from a bad field.
pub const CLIENT_TYPES: &[&str] = <ClientMessage as strum::VariantNames>::VARIANTS;

/// A frame the server refuses, with the code that goes into the `error` frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WireError {
    pub code: &'static str,
    pub message: String,
}

impl WireError {
    pub fn new(code: &'static str, message: impl Into<String>) -> WireError {
        WireError {
            code,
            message: message.into(),
        }
    }

    pub fn bad_field(message: impl Into<String>) -> WireError {
        WireError::new("bad_field", message)
    }
}

/// Largest id of any kind (`alert_id`, `elder_id`, `responder_id`, a grid id), in bytes of
/// UTF-8. Also the largest request `id`, as JSON text.
pub const MAX_ID_BYTES: usize = 128;
/// Largest free text (`reason` of `cancel`, `note` of `resolve`), in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 1_000;
/// Most grids in a console filter.
pub const MAX_FILTER_GRIDS: usize = 1_000;

fn check_id(field: &str, id: &str) -> Result<(), WireError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(WireError::bad_field(format!(
            "`{field}` must be 1 to {MAX_ID_BYTES} bytes (got {})",
            id.len()
        )));
    }
    Ok(())
}

fn check_text(field: &str, text: &str) -> Result<(), WireError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(WireError::bad_field(format!(
            "`{field}` must be at most {MAX_TEXT_BYTES} bytes (got {})",
            text.len()
        )));
    }
    Ok(())
}

impl ClientMessage {
    /// Every string and array within its documented maximum (docs/limits.md), checked before
    /// anything reaches the engine (and so the journal). The error names the field.
    pub fn check_sizes(&self) -> Result<(), WireError> {
        use ClientMessage as C;
        match self {
            C::Alert(a) => a.check_sizes(),
            C::CancelAlert { alert_id } => check_id("alert_id", alert_id.as_str()),
            C::CheckIn { elder_id } => check_id("elder_id", elder_id.as_str()),
            C::Assign { responder_id, .. } => check_id("responder_id", responder_id.as_str()),
            C::Cancel { reason, .. } => check_text("reason", reason),
            C::Resolve { note, .. } => check_text("note", note),
            C::Subscribe { filter, .. } => match &filter.grids {
                Some(g) if g.len() > MAX_FILTER_GRIDS => Err(WireError::bad_field(format!(
                    "`filter.grids` may name at most {MAX_FILTER_GRIDS} grids (got {})",
                    g.len()
                ))),
                Some(g) => g
                    .iter()
                    .try_for_each(|g| check_id("filter.grids", g.as_str())),
                None => Ok(()),
            },
            C::People { entry_id, .. } => entry_id
                .as_deref()
                .map_or(Ok(()), |id| check_id("entry_id", id)),
            C::Location { .. }
            | C::Availability { .. }
            | C::Accept { .. }
            | C::Decline { .. }
            | C::Arrived { .. }
            | C::Complete { .. }
            | C::RequestAmbulance { .. }
            | C::Candidates { .. }
            | C::Ping => Ok(()),
        }
    }
}

/// One parsed frame: the request id (if any could be read) and the message or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub id: Option<Value>,
    pub message: Result<ClientMessage, WireError>,
}

/// The shape of a location ping (other fields are ignored, as the general path ignores them).
#[derive(Deserialize)]
struct LocationPing<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    position: WirePosition,
}

/// Parses one text frame. Never panics; every failure is a [`WireError`] with a code.
pub fn parse_client(text: &str) -> Incoming {
    // The hot path: a phone's location ping (most frames by far), parsed in one pass
    // straight into its fields. Anything else (another type, an `id`, an error) takes the
    // general path below, which gives the same message or the precise error.
    // (`"id"` anywhere, even `"id": null`, goes the general way, which echoes it; a frame
    // that cannot be a ping is not parsed twice.)
    if text.contains("\"location\"") && !text.contains("\"id\"") {
        if let Ok(ping) = serde_json::from_str::<LocationPing>(text) {
            if ping.ty == "location" {
                return Incoming {
                    id: None,
                    message: Ok(ClientMessage::Location {
                        position: ping.position,
                    }),
                };
            }
        }
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Incoming {
                id: None,
                message: Err(WireError::new("bad_json", format!("not JSON: {e}"))),
            }
        }
    };
    let Value::Object(mut map) = value else {
        return Incoming {
            id: None,
            message: Err(WireError::new(
                "bad_json",
                "a frame must be one JSON object",
            )),
        };
    };
    let id = map.remove("id");
    if id
        .as_ref()
        .is_some_and(|v| v.to_string().len() > MAX_ID_BYTES)
    {
        // Not echoed: an oversize `id` would make every error frame as large.
        return Incoming {
            id: None,
            message: Err(WireError::bad_field(format!(
                "`id` must be at most {MAX_ID_BYTES} bytes of JSON"
            ))),
        };
    }
    let message = match map.get("type") {
        None => Err(WireError::bad_field("missing field `type`")),
        Some(Value::String(t)) if !CLIENT_TYPES.contains(&t.as_str()) => Err(WireError::new(
            "unknown_type",
            format!("unknown message type `{t}`"),
        )),
        Some(Value::String(_)) => serde_json::from_value::<ClientMessage>(Value::Object(map))
            .map_err(|e| WireError::bad_field(e.to_string()))
            .and_then(|m| m.check_sizes().map(|()| m)),
        Some(_) => Err(WireError::bad_field("field `type` must be a string")),
    };
    Incoming { id, message }
}

impl ClientMessage {
    /// The role that may send this message (`None`: any role).
    pub fn role(&self) -> Option<Role> {
        use ClientMessage::*;
        match self {
            Alert(_) | CancelAlert { .. } | CheckIn { .. } => Some(Role::Device),
            Location { .. }
            | Availability { .. }
            | Accept { .. }
            | Decline { .. }
            | Arrived { .. }
            | Complete { .. }
            | RequestAmbulance { .. } => Some(Role::Responder),
            Subscribe { .. }
            | Assign { .. }
            | Cancel { .. }
            | Resolve { .. }
            | Candidates { .. }
            | People { .. } => Some(Role::Operator),
            Ping => None,
        }
    }

    /// The operator role an operator's message needs: `people` for people management,
    /// `dispatch` for the rest.
    pub fn operator_role(&self) -> dispatch_core::roster::OperatorRole {
        match self {
            ClientMessage::People { .. } => dispatch_core::roster::OperatorRole::People,
            _ => dispatch_core::roster::OperatorRole::Dispatch,
        }
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Operator,
    Responder,
    Device,
}

impl From<&dispatch_core::roster::Principal> for Role {
    fn from(p: &dispatch_core::roster::Principal) -> Role {
        use dispatch_core::roster::Principal as P;
        match p {
            P::Operator(_) => Role::Operator,
            P::Responder(_) => Role::Responder,
            P::Device(_) => Role::Device,
        }
    }
}

impl Role {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Responder => "responder",
            Role::Device => "device",
        }
    }
}

/// An alert as devices send it (WebSocket `alert` and the body of `POST /v1/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertBody {
    pub alert_id: AlertId,
    pub kind: AlertKind,
    #[serde(default)]
    pub service: Option<ServiceKind>,
    pub elder_id: ElderId,
    #[serde(default)]
    pub position: Option<WirePosition>,
    pub detected_at: Timestamp,
    #[serde(default)]
    pub ambulance_requested: bool,
    #[serde(default)]
    pub scheduled_for: Option<Timestamp>,
}

impl AlertBody {
    /// `alert_id` and `elder_id` within [`MAX_ID_BYTES`].
    pub fn check_sizes(&self) -> Result<(), WireError> {
        check_id("alert_id", self.alert_id.as_str())?;
        check_id("elder_id", self.elder_id.as_str())
    }

    /// The engine's alert, positions converted, bound to the sending gateway.
    pub fn into_command(self, device_id: DeviceId) -> Result<Command, WireError> {
        self.check_sizes()?;
        if self.kind == AlertKind::Help && self.service.is_none() {
            return Err(WireError::bad_field("a `help` alert needs a `service`"));
        }
        let position = self.position.map(WirePosition::to_wgs84).transpose()?;
        Ok(Command::Alert(Alert {
            alert_id: self.alert_id,
            kind: self.kind,
            service: self.service,
            elder_id: self.elder_id,
            position,
            detected_at: self.detected_at,
            ambulance_requested: self.ambulance_requested,
            scheduled_for: self.scheduled_for,
            device_id,
        }))
    }
}

/// The body of `alert_accepted` (also the HTTP 202 body of `POST /v1/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertAccepted {
    #[serde(rename = "type")]
    pub kind: AlertAcceptedTag,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<Value>,
    pub alert_id: AlertId,
    pub incident_id: IncidentId,
    pub duplicate: bool,
    /// True when the alert joined an open incident of the same need (docs/protocol.md,
    /// "Which alerts merge"); absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merged: bool,
}

impl AlertAccepted {
    /// The answer to an alert: `alert_accepted`, or, when the engine could not dispatch it,
    /// an `error` naming what was wrong and the incident the operators now have.
    pub fn reply(
        re: Option<Value>,
        alert_id: AlertId,
        incident_id: IncidentId,
        duplicate: bool,
        merged: bool,
        problem: Option<&dispatch_core::incident::NeedsOperator>,
    ) -> Result<AlertAccepted, Box<ServerMessage>> {
        match problem {
            Some(p) => Err(Box::new(ServerMessage::Error {
                re,
                code: p.code.code(),
                message: format!(
                    "{}; the alert is kept as incident {incident_id} for an operator",
                    p.message
                ),
                incident_id: Some(incident_id),
                resting_until: None,
            })),
            None => Ok(AlertAccepted {
                kind: AlertAcceptedTag::AlertAccepted,
                re,
                alert_id,
                incident_id,
                duplicate,
                merged,
            }),
        }
    }
}

/// The constant `"alert_accepted"` tag.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertAcceptedTag {
    AlertAccepted,
}

/// What the server knows about an incident that a responder may see about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFacts {
    /// Told to the assigned responder only (who is at the door), never in an offer.
    pub elder_id: ElderId,
    /// The elder's details from the roster; only [`AtTheDoor`] of them reaches a responder,
    /// and only once assigned.
    pub elder: ElderDetails,
    pub kind: AlertKind,
    pub service: Option<ServiceKind>,
    pub priority: u8,
    pub position: LatLon,
}

/// What an elder's kin are told of one step of the elder's incident (`kin_update`, issue 12
/// gap 11): what happened and when, and of who is coming only their kind and ETA (a
/// volunteer's identity stays theirs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KinNews {
    pub incident_id: IncidentId,
    pub elder_id: ElderId,
    /// `opened`, `coming`, `unassigned`, `arrived`, `resolved` or `cancelled`.
    pub stage: &'static str,
    pub kind: AlertKind,
    pub service: Option<ServiceKind>,
    pub at: Timestamp,
    /// `coming` and `arrived`: who (their kind: `volunteer`, `grid_worker`, `ambulance`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responder_kind: Option<ResponderKind>,
    /// `coming`: their ETA when they accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_s: Option<u32>,
}

/// What the assigned responder is told of the person at the door: the elder's name, address,
/// phone, languages and keyholders; an ambulance crew also the medical notes. Never the
/// family's contacts, never in an offer (DESIGN §5's privacy rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtTheDoor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keyholders: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medical_notes: Option<String>,
}

impl AtTheDoor {
    /// What `role` is told of `d` (`None`: nothing to tell).
    pub fn of(d: &ElderDetails, role: AssignmentRole) -> Option<AtTheDoor> {
        let door = AtTheDoor {
            name: d.name.clone(),
            address: d.address.clone(),
            phone: d.phone.clone(),
            languages: d.languages.clone(),
            keyholders: d.keyholders.clone(),
            medical_notes: match role {
                AssignmentRole::Ambulance => d.medical_notes.clone(),
                AssignmentRole::Community => None,
            },
        };
        let empty = door.name.is_none()
            && door.address.is_none()
            && door.phone.is_none()
            && door.languages.is_empty()
            && door.keyholders.is_empty()
            && door.medical_notes.is_none();
        (!empty).then_some(door)
    }
}

/// How a console wants responders' moves: one numbered `responder_moved` frame each, or
/// gathered into unnumbered `responders_moved` frames (at most twenty a second, one entry per responder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovesMode {
    #[default]
    Each,
    Batched,
}

/// One responder's position in a `responders_moved` frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MovedEntry {
    pub responder_id: ResponderId,
    pub position: LatLon,
    /// When the engine took the position (the `at` of its `responder_moved` event).
    pub at: Timestamp,
}

/// Messages from the server other than console events (those are [`EventFrame`]s).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First frame of every session: who the token says you are.
    Welcome {
        role: Role,
        id: String,
        protocol: &'static str,
    },
    /// A request succeeded (and, if it changed state, is durable).
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<Value>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<Value>,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<Value>,
        code: &'static str,
        message: String,
        /// An alert the engine could not dispatch (unknown elder, off the map, an alert id
        /// resent with other content) is still kept: the incident an operator handles.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<IncidentId>,
        /// A volunteer refused `available` while resting after an emergency: when the rest
        /// ends (the phone says so, and may go available from then on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resting_until: Option<Timestamp>,
    },
    /// To a responder: a job offer.
    Offer {
        offer_id: OfferId,
        incident_id: IncidentId,
        kind: AlertKind,
        service: Option<ServiceKind>,
        priority: u8,
        position: LatLon,
        eta_s: u32,
        distance_m: u32,
        route: Vec<LatLon>,
        expires_at: Timestamp,
    },
    /// To a responder: an offer is no longer open (`filled`, `incident_closed`,
    /// `responder_unavailable`, `reassigned`, or `expired`).
    OfferWithdrawn {
        offer_id: OfferId,
        incident_id: IncidentId,
        reason: &'static str,
    },
    /// To a responder: you are on this job.
    Assigned {
        incident_id: IncidentId,
        role: AssignmentRole,
        /// The person at the door: told once assigned, never in an offer.
        elder_id: Option<ElderId>,
        /// What the responder needs of them at the door (absent when the roster has none).
        #[serde(skip_serializing_if = "Option::is_none")]
        elder: Option<AtTheDoor>,
        kind: Option<AlertKind>,
        service: Option<ServiceKind>,
        priority: Option<u8>,
        position: Option<LatLon>,
        eta_s: u32,
        route: Vec<LatLon>,
    },
    /// To an assigned responder: the incident was resolved or cancelled; stand down.
    IncidentClosed {
        incident_id: IncidentId,
        status: &'static str,
    },
    /// To an elder's kin: a step of the elder's incident.
    KinUpdate(KinNews),
    /// To a volunteer: minutes credited to the time bank.
    TimeBankCredited {
        incident_id: IncidentId,
        minutes: u32,
    },
    /// To a console: the state at `seq`; numbered events after it follow.
    Snapshot {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<Value>,
        seq: u64,
        /// Why a snapshot was sent: `subscribe`, `resume_unavailable` or `lagged`.
        reason: &'static str,
        state: Value,
    },
    /// To an operator: the answer to `candidates`.
    Candidates {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<Value>,
        incident_id: IncidentId,
        candidates: Value,
    },
    /// To an operator: the answer to `people`, with the status and body HTTP would answer.
    PeopleResult {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<Value>,
        status: u16,
        body: Value,
    },
    /// To a console that resumed: events after `from_seq` follow; no snapshot needed.
    Resumed {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<Value>,
        from_seq: u64,
    },
    /// To a console subscribed with `"moves": "batched"`: the latest position of each
    /// responder that moved since the previous such frame, oldest first. Not numbered (moves are
    /// never replayed); `at` is the newest entry's.
    RespondersMoved {
        at: Timestamp,
        moves: Vec<MovedEntry>,
    },
}

impl ServerMessage {
    pub fn error(
        re: Option<Value>,
        code: &'static str,
        message: impl Into<String>,
    ) -> ServerMessage {
        ServerMessage::Error {
            re,
            code,
            message: message.into(),
            incident_id: None,
            resting_until: None,
        }
    }

    /// The frame's text.
    pub fn encode(&self) -> String {
        // Serializing these plain structs cannot fail (string keys, finite or null floats).
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","code":"internal","message":"encode: {e}"}}"#)
        })
    }
}

/// A numbered event as consoles receive it: the event's own fields and `type`, plus
/// `seq` and `at`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventFrame<'a> {
    pub seq: u64,
    pub at: Timestamp,
    #[serde(flatten)]
    pub event: &'a Event,
}

/// The console frame of one event.
pub fn encode_event(record: &EventRecord) -> String {
    let frame = EventFrame {
        seq: record.seq,
        at: record.at,
        event: &record.event,
    };
    serde_json::to_string(&frame).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","code":"internal","message":"encode: {e}"}}"#)
    })
}

/// The wire name of a withdrawal reason.
pub fn withdraw_reason(r: WithdrawReason) -> &'static str {
    match r {
        WithdrawReason::Filled => "filled",
        WithdrawReason::IncidentClosed => "incident_closed",
        WithdrawReason::ResponderUnavailable => "responder_unavailable",
        WithdrawReason::Reassigned => "reassigned",
        WithdrawReason::Preempted => "preempted",
    }
}

/// The responder-facing frame of an event addressed to `responder`, if it has one.
/// `job` looks up what a responder may know about an incident.
pub fn responder_message(
    event: &Event,
    job: impl Fn(IncidentId) -> Option<JobFacts>,
) -> Option<ServerMessage> {
    match event {
        Event::OfferSent {
            offer_id,
            incident_id,
            eta_s,
            distance_m,
            route,
            expires_at,
            ..
        } => {
            let facts = job(*incident_id)?;
            Some(ServerMessage::Offer {
                offer_id: *offer_id,
                incident_id: *incident_id,
                kind: facts.kind,
                service: facts.service,
                priority: facts.priority,
                position: facts.position,
                eta_s: *eta_s,
                distance_m: *distance_m,
                route: route.clone(),
                expires_at: *expires_at,
            })
        }
        Event::OfferWithdrawn {
            offer_id,
            incident_id,
            reason,
            ..
        } => Some(ServerMessage::OfferWithdrawn {
            offer_id: *offer_id,
            incident_id: *incident_id,
            reason: withdraw_reason(*reason),
        }),
        Event::OfferExpired {
            offer_id,
            incident_id,
            ..
        } => Some(ServerMessage::OfferWithdrawn {
            offer_id: *offer_id,
            incident_id: *incident_id,
            reason: "expired",
        }),
        Event::Assigned {
            incident_id,
            role,
            eta_s,
            route,
            ..
        } => {
            let facts = job(*incident_id);
            Some(ServerMessage::Assigned {
                incident_id: *incident_id,
                role: *role,
                elder_id: facts.as_ref().map(|f| f.elder_id.clone()),
                elder: facts.as_ref().and_then(|f| AtTheDoor::of(&f.elder, *role)),
                kind: facts.as_ref().map(|f| f.kind),
                service: facts.as_ref().and_then(|f| f.service),
                priority: facts.as_ref().map(|f| f.priority),
                position: facts.as_ref().map(|f| f.position),
                eta_s: *eta_s,
                route: route.clone(),
            })
        }
        Event::TimeBankCredited {
            incident_id,
            minutes,
            ..
        } => Some(ServerMessage::TimeBankCredited {
            incident_id: *incident_id,
            minutes: *minutes,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One table of client message names: the enum. The list that tells an unknown type from a
    /// bad field and the labels in logs are serde's own names.
    #[test]
    fn wire_names_are_serdes() {
        assert_eq!(
            dispatch_core::serde_names::variants::<ClientMessage>("type"),
            Some(CLIENT_TYPES)
        );
        let i = parse_client(r#"{"type":"request_ambulance","incident_id":3}"#);
        let msg = i.message.expect("a valid frame");
        assert_eq!(<&str>::from(&msg), "request_ambulance");
    }

    #[test]
    fn parse_sorts_failures_into_codes_and_keeps_the_id() {
        let i = parse_client("{not json");
        assert_eq!(i.message.unwrap_err().code, "bad_json");
        let i = parse_client("[1,2]");
        assert_eq!(i.message.unwrap_err().code, "bad_json");
        let i = parse_client(r#"{"type":"teleport","id":7}"#);
        assert_eq!(i.id, Some(Value::from(7)));
        assert_eq!(i.message.unwrap_err().code, "unknown_type");
        let i = parse_client(r#"{"type":"accept","id":"a","offer_id":"x"}"#);
        assert_eq!(i.id, Some(Value::from("a")));
        assert_eq!(i.message.unwrap_err().code, "bad_field");
        let i = parse_client(r#"{"id":1}"#);
        assert_eq!(i.message.unwrap_err().code, "bad_field");
        let i = parse_client(r#"{"type":"accept","id":"a","offer_id":12}"#);
        assert_eq!(
            i.message.unwrap(),
            ClientMessage::Accept {
                offer_id: OfferId(12)
            }
        );
    }

    /// The general path alone, as `parse_client` was before the location fast path.
    fn parse_general(text: &str) -> (Option<Value>, Result<ClientMessage, String>) {
        let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(text) else {
            return (None, Err("bad_json".into()));
        };
        let id = map.remove("id");
        let m = serde_json::from_value::<ClientMessage>(Value::Object(map))
            .map_err(|_| "bad_field".to_string());
        (id, m)
    }

    /// The location fast path is an optimisation only: on every frame it gives what the
    /// general path gives (message, id, error code).
    #[test]
    fn location_fast_path_agrees_with_the_general_path() {
        let frames = [
            r#"{"type":"location","position":{"lat":-30.03,"lon":-51.2}}"#,
            r#"{"position":{"lat":-30.03,"lon":-51.2},"type":"location"}"#,
            r#"{"type":"location","position":{"lat":39.9,"lon":116.4,"crs":"gcj02"}}"#,
            r#"{"type":"location","position":{"lat":39.9,"lon":116.4,"crs":"bd09"},"extra":[1]}"#,
            r#"{"type":"location","position":{"lat":-30.03,"lon":-51.2},"id":5}"#,
            r#"{"type":"location","position":{"lat":-30.03,"lon":-51.2},"id":null}"#,
            r#"{"type":"location","position":{"lat":"x","lon":-51.2}}"#,
            r#"{"type":"location","position":{"lat":-30.03}}"#,
            r#"{"type":"location"}"#,
            r#"{"type":"locatio","position":{"lat":-30.03,"lon":-51.2}}"#,
            r#"{"type":"availability","status":"available","position":{"lat":1,"lon":2}}"#,
            r#"{"type":"location","position":{"lat":-30.03,"lon":-51.2,"crs":"utm"}}"#,
            r#"{"type":"loc\u0061tion","position":{"lat":-30.03,"lon":-51.2}}"#,
        ];
        for f in frames {
            let fast = parse_client(f);
            let (id, general) = parse_general(f);
            assert_eq!(fast.id, id, "{f}");
            match (&fast.message, &general) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{f}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{f}: fast {a:?} vs general {b:?}"),
            }
        }
    }

    #[test]
    fn positions_convert_at_the_edge() {
        // Beijing, where GCJ-02 really differs: the published reference pair.
        let gcj = WirePosition {
            lat: 39.916_404_281_501_64,
            lon: 116.410_244_499_169_38,
            crs: Some(Crs::Gcj02),
        };
        let w = gcj.to_wgs84().unwrap();
        assert!(
            (w.lat - 39.915).abs() < 1e-6 && (w.lon - 116.404).abs() < 1e-6,
            "{w:?}"
        );
        let bad = WirePosition {
            lat: 95.0,
            lon: 0.0,
            crs: None,
        };
        assert_eq!(bad.to_wgs84().unwrap_err().code, "bad_field");
    }

    #[test]
    fn filters_pass_what_they_describe() {
        let f = Filter {
            bbox: Some([-30.1, -51.3, -30.0, -51.1]),
            grids: Some(vec![GridId::from("G1")]),
            min_priority: Some(3),
        };
        let inside = LatLon {
            lat: -30.05,
            lon: -51.2,
        };
        let outside = LatLon {
            lat: -29.0,
            lon: -51.2,
        };
        assert!(f.passes(Some(inside), Some(&GridId::from("G1")), Some(4)));
        assert!(!f.passes(Some(outside), Some(&GridId::from("G1")), Some(4)));
        assert!(!f.passes(Some(inside), Some(&GridId::from("G2")), Some(4)));
        assert!(!f.passes(Some(inside), Some(&GridId::from("G1")), Some(2)));
        assert!(Filter::default().passes(None, None, None));
    }

    #[test]
    fn event_frames_carry_seq_at_and_the_event_type() {
        let rec = EventRecord {
            seq: 9,
            at: Timestamp(1000),
            event: Event::CheckedIn {
                elder_id: ElderId::from("E1"),
            },
        };
        let v: Value = serde_json::from_str(&encode_event(&rec)).unwrap();
        assert_eq!(v["seq"], 9);
        assert_eq!(v["at"], 1000);
        assert_eq!(v["type"], "checked_in");
        assert_eq!(v["elder_id"], "E1");
    }
}
