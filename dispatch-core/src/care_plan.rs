//! Care plans: the routines an elder's carers keep ("a visit a week by V12", "a call a day",
//! "a meal a month"), the local calendar they are kept in, the record of each occurrence and
//! the compliance report computed from those records (a pure function, so it is tested on
//! hand-computed cases and an oracle).
//!
//! **Periods and windows.** An item recurs once per *period*: a `day`, a `week` (Monday to
//! Sunday), a `month` or a `season` (three calendar months from January, April, July or
//! October), in the deployment's local time (`PolicyConfig::utc_offset_s`, a fixed offset:
//! no daylight saving). Within its period an item has one *window*: it opens on day
//! `from_day` (1 = the period's first day; Monday for a week) at `from` ("HH:MM") and closes on
//! day `to_day` (absent: the period's last day) at `to` ("24:00" is the end of that day). No
//! window: the whole period.
//!
//! **Outcomes.** When the window opens the engine opens a job (an incident of kind
//! `care_plan`) offered to the planned person first. Completed by the window's close: `on_time`;
//! completed later: `late`; nobody arrived by the close plus `PolicyConfig::care_missed_grace_ms`:
//! `missed` (the job is cancelled with that reason); an operator cancelling the job, or the
//! item leaving the plan: `cancelled` (not counted against anyone).

use crate::ids::{ElderId, GridId, IncidentId, ResponderId};
use crate::model::ServiceKind;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most this many items in one elder's plan.
pub const MAX_CARE_ITEMS: usize = 16;
/// An item id is 1 to this many bytes of `A-Z a-z 0-9 _ - .`.
pub const MAX_ITEM_ID_BYTES: usize = 32;
/// Occurrences kept per item: a daily item's last 13 months.
pub const MAX_OCCURRENCES: usize = 400;
/// Occurrences whose window closed longer ago than this are forgotten (about 13 months).
pub const HISTORY_MS: i64 = 400 * DAY_MS;

const MIN_MS: i64 = 60_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// What is done for the elder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CareKind {
    /// Somebody goes to the door.
    Visit,
    /// Somebody telephones: no travel, so only people the elder knows are asked.
    Call,
    /// A service (`service`: meal, cleaning, …) by somebody with its skill.
    Service,
}

/// How often an item recurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CarePeriod {
    Day,
    /// Monday 00:00 to the next Monday 00:00.
    Week,
    Month,
    /// Three calendar months from January, April, July or October.
    Season,
}

impl CarePeriod {
    /// The last day a window may name: the shortest such period's length.
    pub fn max_day(self) -> u16 {
        match self {
            CarePeriod::Day => 1,
            CarePeriod::Week => 7,
            CarePeriod::Month => 28,
            CarePeriod::Season => 90,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CarePeriod::Day => "day",
            CarePeriod::Week => "week",
            CarePeriod::Month => "month",
            CarePeriod::Season => "season",
        }
    }
}

fn first_day() -> u16 {
    1
}
fn midnight() -> String {
    "00:00".into()
}
fn end_of_day() -> String {
    "24:00".into()
}
fn is_first_day(d: &u16) -> bool {
    *d == 1
}
fn is_midnight(s: &str) -> bool {
    s == "00:00"
}
fn is_end_of_day(s: &str) -> bool {
    s == "24:00"
}

/// When in its period an item should be done (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CareWindow {
    /// The day the window opens, 1 = the period's first day (Monday for a week).
    #[serde(default = "first_day", skip_serializing_if = "is_first_day")]
    #[schemars(range(min = 1, max = 90))]
    pub from_day: u16,
    /// The day it closes; absent: the period's last day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 90))]
    pub to_day: Option<u16>,
    /// Local time it opens on `from_day`, "HH:MM".
    #[serde(default = "midnight", skip_serializing_if = "is_midnight")]
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub from: String,
    /// Local time it closes on `to_day`, "HH:MM" ("24:00": the end of the day).
    #[serde(default = "end_of_day", skip_serializing_if = "is_end_of_day")]
    #[schemars(regex(pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"))]
    pub to: String,
}

/// One routine of an elder's care plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CarePlanItem {
    /// Unique within the elder's plan.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,32}$"))]
    pub id: String,
    pub kind: CareKind,
    /// The service, for `kind: service` only (not `rescue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceKind>,
    pub period: CarePeriod,
    /// Who is asked first: a responder on the roster (a paired volunteer, usually). Absent:
    /// the elder's grid worker(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_responder: Option<ResponderId>,
    /// Absent: the whole period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<CareWindow>,
}

/// Minutes after midnight of an "HH:MM" ("24:00" allowed when `end`).
pub(crate) fn parse_hhmm(s: &str, end: bool) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Checks one elder's plan: sizes, ids, services, windows, and that each planned responder
/// exists (`known`). The error names the item and its field (`care_plan[1].window.to: …`).
pub fn check_plan(
    items: &[CarePlanItem],
    known: &dyn Fn(&ResponderId) -> bool,
) -> Result<(), String> {
    if items.len() > MAX_CARE_ITEMS {
        return Err(format!(
            "care_plan: {} items, at most {MAX_CARE_ITEMS}",
            items.len()
        ));
    }
    for (n, it) in items.iter().enumerate() {
        let at = format!("care_plan[{n}]");
        if it.id.is_empty()
            || it.id.len() > MAX_ITEM_ID_BYTES
            || !it
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(format!(
                "{at}.id: {:?} is not 1 to {MAX_ITEM_ID_BYTES} of A-Z a-z 0-9 _ - .",
                it.id.chars().take(40).collect::<String>()
            ));
        }
        if items[..n].iter().any(|o| o.id == it.id) {
            return Err(format!("{at}.id: duplicate item id {}", it.id));
        }
        match (it.kind, it.service) {
            (CareKind::Service, None) => {
                return Err(format!("{at}.service: required for kind service"))
            }
            (CareKind::Service, Some(ServiceKind::Rescue)) => {
                return Err(format!(
                    "{at}.service: rescue is an emergency, not a planned service"
                ))
            }
            (CareKind::Visit | CareKind::Call, Some(_)) => {
                return Err(format!("{at}.service: only for kind service"))
            }
            _ => {}
        }
        if let Some(p) = &it.planned_responder {
            if !known(p) {
                return Err(format!("{at}.planned_responder: unknown responder {p}"));
            }
        }
        if let Some(w) = &it.window {
            let max = it.period.max_day();
            let to_day = w.to_day.unwrap_or(max);
            if !(1..=max).contains(&w.from_day) {
                return Err(format!(
                    "{at}.window.from_day: {} is not in 1..={max} for a {}",
                    w.from_day,
                    it.period.name()
                ));
            }
            if !(1..=max).contains(&to_day) {
                return Err(format!(
                    "{at}.window.to_day: {to_day} is not in 1..={max} for a {}",
                    it.period.name()
                ));
            }
            let from = parse_hhmm(&w.from, false)
                .ok_or_else(|| format!("{at}.window.from: {:?} is not HH:MM", w.from))?;
            let to = parse_hhmm(&w.to, true)
                .ok_or_else(|| format!("{at}.window.to: {:?} is not HH:MM", w.to))?;
            if (w.from_day, from) >= (to_day, to) {
                return Err(format!(
                    "{at}.window: it closes (day {to_day} {}) before it opens (day {} {})",
                    w.to, w.from_day, w.from
                ));
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ the local calendar

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// A span of time, `[from, to)`, in UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The period of kind `p` holding `at`, with a local time `utc_offset_s` ahead of UTC.
pub fn period_of(p: CarePeriod, at: Timestamp, utc_offset_s: i32) -> Span {
    let off = i64::from(utc_offset_s) * 1000;
    let day = (at.0 + off).div_euclid(DAY_MS);
    let (y, m, _) = civil_from_days(day);
    let (from, to) = match p {
        CarePeriod::Day => (day, day + 1),
        CarePeriod::Week => {
            // 1970-01-01 was a Thursday: Monday is day 4 of that week's count.
            let monday = day - (day + 3).rem_euclid(7);
            (monday, monday + 7)
        }
        CarePeriod::Month => {
            let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(y, m, 1), days_from_civil(next.0, next.1, 1))
        }
        CarePeriod::Season => {
            let first = (m - 1) / 3 * 3 + 1;
            let next = if first == 10 {
                (y + 1, 1)
            } else {
                (y, first + 3)
            };
            (
                days_from_civil(y, first, 1),
                days_from_civil(next.0, next.1, 1),
            )
        }
    };
    Span {
        from: Timestamp(from * DAY_MS - off),
        to: Timestamp(to * DAY_MS - off),
    }
}

/// An item's window within `period` (a span [`period_of`] gave).
pub fn window_in(item: &CarePlanItem, period: Span) -> Span {
    let Some(w) = &item.window else {
        return period;
    };
    let days = (period.to.0 - period.from.0) / DAY_MS;
    let from_min = parse_hhmm(&w.from, false).unwrap_or(0);
    let to_min = parse_hhmm(&w.to, true).unwrap_or(24 * 60);
    let to_day = w.to_day.map_or(days, i64::from);
    Span {
        from: Timestamp(period.from.0 + (i64::from(w.from_day) - 1) * DAY_MS + from_min * MIN_MS),
        to: Timestamp(period.from.0 + (to_day - 1) * DAY_MS + to_min * MIN_MS),
    }
}

/// The period after `period` (of the same kind).
pub fn next_period(p: CarePeriod, period: Span, utc_offset_s: i32) -> Span {
    period_of(p, period.to, utc_offset_s)
}

// ------------------------------------------------------------------ what happened

/// How one occurrence ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pending,
    OnTime,
    Late,
    Missed,
    Cancelled,
}

/// One occurrence of an item: its window, its job and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// The start of its period (its key within the item).
    pub period_from: Timestamp,
    /// When it was opened (its window's start, or later if the item was added mid-window).
    pub opened_at: Timestamp,
    /// Its window's close: done by then is on time.
    pub due_by: Timestamp,
    pub kind: CareKind,
    /// The elder's grid when it opened.
    pub grid_id: GridId,
    /// Who was asked first (the planned responder, or the first grid worker).
    pub planned: Option<ResponderId>,
    pub incident_id: Option<IncidentId>,
    pub outcome: Outcome,
    /// When the outcome was decided (absent while pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Timestamp>,
    /// Who completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_by: Option<ResponderId>,
}

impl Occurrence {
    /// Its outcome as it stood at `at` (`None`: not yet opened then).
    pub fn outcome_at(&self, at: Timestamp) -> Option<Outcome> {
        if self.opened_at > at {
            return None;
        }
        match self.settled_at {
            Some(t) if t <= at => Some(self.outcome),
            _ => Some(Outcome::Pending),
        }
    }

    /// Who answers for it: who did it, else who was asked first.
    pub fn person(&self) -> Option<&ResponderId> {
        self.done_by.as_ref().or(self.planned.as_ref())
    }
}

/// One item of one elder's plan (its timer's name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CareKey {
    pub elder_id: ElderId,
    pub item_id: String,
}

/// Every occurrence the engine has opened, by elder and item id, oldest first (bounded by
/// [`MAX_OCCURRENCES`] and [`HISTORY_MS`]). Saved in snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CareBook {
    pub items: BTreeMap<ElderId, BTreeMap<String, Vec<Occurrence>>>,
    /// The roster's plans have not been scheduled yet (a new engine): the next call does it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsynced: bool,
}

// ------------------------------------------------------------------ the report

/// Counts of the occurrences due in a span (their window closes in it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Every occurrence due, but the cancelled ones.
    pub planned: u32,
    pub on_time: u32,
    pub late: u32,
    pub missed: u32,
    /// Opened and not yet decided.
    pub pending: u32,
    pub cancelled: u32,
    /// `on_time / (on_time + late + missed)`: the share of the decided ones done on time
    /// (`None` while none is decided).
    pub on_time_share: Option<f64>,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Pending => self.pending += 1,
            Outcome::OnTime => self.on_time += 1,
            Outcome::Late => self.late += 1,
            Outcome::Missed => self.missed += 1,
            Outcome::Cancelled => self.cancelled += 1,
        }
        self.planned = self.on_time + self.late + self.missed + self.pending;
        let decided = self.on_time + self.late + self.missed;
        self.on_time_share = (decided > 0).then(|| f64::from(self.on_time) / f64::from(decided));
    }
}

/// This week's and this month's counts of one grid or one responder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeekMonth {
    pub week: Counts,
    pub month: Counts,
}

/// An elder whose item was missed and not done since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overdue {
    pub elder_id: ElderId,
    pub grid_id: GridId,
    pub item_id: String,
    pub kind: CareKind,
    pub period: CarePeriod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_responder: Option<ResponderId>,
    /// When it was last done (`None`: never, as far as the history goes).
    pub last_done: Option<Timestamp>,
    /// The close of the first window missed since.
    pub overdue_since: Timestamp,
    pub overdue_ms: u64,
    /// Windows missed in a row.
    pub missed: u32,
}

/// `GET /v1/care-plans/compliance`: see [`compliance`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceReport {
    pub at: Timestamp,
    pub utc_offset_s: i32,
    /// The calendar week (Monday-start) and month holding `at`, local time.
    pub week: Span,
    pub month: Span,
    pub grids: BTreeMap<GridId, WeekMonth>,
    pub responders: BTreeMap<ResponderId, WeekMonth>,
    /// Most overdue first.
    pub not_visited: Vec<Overdue>,
}

/// One item's history as the report reads it: the elder's grid now and the item as the plan
/// holds it now (`None`: no longer in the plan; its history still counts).
pub struct ItemHistory<'a> {
    pub elder_id: &'a ElderId,
    pub grid_id: &'a GridId,
    pub item_id: &'a str,
    pub item: Option<&'a CarePlanItem>,
    pub occurrences: &'a [Occurrence],
}

/// The compliance report as things stood at `at`: per grid (the elder's grid when the
/// occurrence opened) and per responder (who did it, else who was asked first), the
/// occurrences due this week and this month (their window closes in the span) by outcome;
/// and every current item whose latest decided occurrence was missed ("not visited": since the
/// close of the first window missed after the last one done).
pub fn compliance<'a>(
    items: impl Iterator<Item = ItemHistory<'a>>,
    at: Timestamp,
    utc_offset_s: i32,
) -> ComplianceReport {
    let week = period_of(CarePeriod::Week, at, utc_offset_s);
    let month = period_of(CarePeriod::Month, at, utc_offset_s);
    let inside = |s: Span, t: Timestamp| s.from <= Timestamp(t.0 - 1) && Timestamp(t.0 - 1) < s.to;
    let mut grids: BTreeMap<GridId, WeekMonth> = BTreeMap::new();
    let mut responders: BTreeMap<ResponderId, WeekMonth> = BTreeMap::new();
    let mut not_visited = Vec::new();
    for h in items {
        let mut last_done = None;
        let mut missed_since: Option<(Timestamp, u32)> = None;
        for o in h.occurrences {
            let Some(outcome) = o.outcome_at(at) else {
                continue;
            };
            for (span, pick) in [(week, 0), (month, 1)] {
                if !inside(span, o.due_by) {
                    continue;
                }
                let bump = |wm: &mut WeekMonth| {
                    if pick == 0 {
                        wm.week.add(outcome)
                    } else {
                        wm.month.add(outcome)
                    }
                };
                bump(grids.entry(o.grid_id.clone()).or_default());
                if let Some(p) = o.person() {
                    bump(responders.entry(p.clone()).or_default());
                }
            }
            match outcome {
                Outcome::OnTime | Outcome::Late => {
                    last_done = o.settled_at;
                    missed_since = None;
                }
                Outcome::Missed => {
                    let (since, n) = missed_since.unwrap_or((o.due_by, 0));
                    missed_since = Some((since, n + 1));
                }
                Outcome::Pending | Outcome::Cancelled => {}
            }
        }
        if let (Some(item), Some((since, n))) = (h.item, missed_since) {
            not_visited.push(Overdue {
                elder_id: h.elder_id.clone(),
                grid_id: h.grid_id.clone(),
                item_id: h.item_id.to_string(),
                kind: item.kind,
                period: item.period,
                planned_responder: item.planned_responder.clone(),
                last_done,
                overdue_since: since,
                overdue_ms: at.ms_since(since),
                missed: n,
            });
        }
    }
    not_visited.sort_by(|a, b| {
        b.overdue_ms
            .cmp(&a.overdue_ms)
            .then_with(|| a.elder_id.cmp(&b.elder_id))
            .then_with(|| a.item_id.cmp(&b.item_id))
    });
    ComplianceReport {
        at,
        utc_offset_s,
        week,
        month,
        grids,
        responders,
        not_visited,
    }
}

#[cfg(test)]
mod tests;
