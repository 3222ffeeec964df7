//! The calendar against a day-by-day walk, windows by hand, and the compliance report on a
//! hand-computed case and against a naive oracle on random histories (fixed seeds).

use super::*;
use proptest::prelude::*;

const HOUR: i64 = 3_600_000;

fn ts(y: i64, m: u32, d: u32, h: i64) -> Timestamp {
    Timestamp(days_from_civil(y, m, d) * DAY_MS + h * HOUR)
}

#[test]
fn the_calendar_agrees_with_a_day_by_day_walk() {
    // Walk from 1 January 1960 to 31 December 2040, one day at a time, counting the date
    // by hand; every day must map both ways, and Mondays must start the week.
    let (mut y, mut m, mut d) = (1960_i64, 1_u32, 1_u32);
    let mut weekday = 4; // 1 January 1960 was a Friday (Monday = 0).
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let len = |y: i64, m: u32| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let mut day = days_from_civil(1960, 1, 1);
    while y <= 2040 {
        assert_eq!(days_from_civil(y, m, d), day);
        assert_eq!(civil_from_days(day), (y, m, d));
        let at = Timestamp(day * DAY_MS + 13 * HOUR);
        let week = period_of(CarePeriod::Week, at, 0);
        assert_eq!(week.from.0, (day - weekday) * DAY_MS, "{y}-{m}-{d}");
        assert_eq!(week.to.0 - week.from.0, 7 * DAY_MS);
        let month = period_of(CarePeriod::Month, at, 0);
        assert_eq!(month.from.0, (day - i64::from(d) + 1) * DAY_MS);
        assert_eq!((month.to.0 - month.from.0) / DAY_MS, i64::from(len(y, m)));
        let season = period_of(CarePeriod::Season, at, 0);
        let first = (m - 1) / 3 * 3 + 1;
        assert_eq!(
            season.from,
            Timestamp(days_from_civil(y, first, 1) * DAY_MS)
        );
        assert!((90..=92).contains(&((season.to.0 - season.from.0) / DAY_MS)));
        day += 1;
        weekday = (weekday + 1) % 7;
        d += 1;
        if d > len(y, m) {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
}

#[test]
fn periods_follow_the_local_offset() {
    // 02:00 UTC on Monday 7 December 2026 is still Sunday in Porto Alegre (UTC-3): the
    // local week started on Monday 30 November, at 03:00 UTC.
    let at = ts(2026, 12, 7, 2);
    let week = period_of(CarePeriod::Week, at, -10_800);
    assert_eq!(week.from, ts(2026, 11, 30, 3));
    assert_eq!(week.to, ts(2026, 12, 7, 3));
    assert_eq!(period_of(CarePeriod::Week, at, 0).from, ts(2026, 12, 7, 0));
    let day = period_of(CarePeriod::Day, at, 3600);
    assert_eq!(
        day,
        Span {
            from: ts(2026, 12, 6, 23),
            to: ts(2026, 12, 7, 23)
        }
    );
    assert_eq!(
        next_period(CarePeriod::Month, period_of(CarePeriod::Month, at, 0), 0).from,
        ts(2027, 1, 1, 0)
    );
}

fn item(period: CarePeriod, window: Option<CareWindow>) -> CarePlanItem {
    CarePlanItem {
        id: "i".into(),
        kind: CareKind::Visit,
        service: None,
        period,
        planned_responder: None,
        window,
    }
}

#[test]
fn windows_by_hand() {
    let w = |from_day, to_day, from: &str, to: &str| {
        Some(CareWindow {
            from_day,
            to_day,
            from: from.into(),
            to: to.into(),
        })
    };
    let week = period_of(CarePeriod::Week, ts(2026, 12, 9, 12), 0);
    // Tuesday 09:00 to Thursday 17:30.
    let s = window_in(
        &item(CarePeriod::Week, w(2, Some(4), "09:00", "17:30")),
        week,
    );
    assert_eq!(s.from, ts(2026, 12, 8, 9));
    assert_eq!(s.to, Timestamp(ts(2026, 12, 10, 17).0 + 30 * 60_000));
    // To the end of the month (31 days in December): its last day at 24:00.
    let month = period_of(CarePeriod::Month, ts(2026, 12, 9, 12), 0);
    let s = window_in(
        &item(CarePeriod::Month, w(10, None, "00:00", "24:00")),
        month,
    );
    assert_eq!((s.from, s.to), (ts(2026, 12, 10, 0), ts(2027, 1, 1, 0)));
    // No window: the whole period.
    assert_eq!(window_in(&item(CarePeriod::Month, None), month), month);
}

#[test]
fn plans_are_checked_naming_the_field() {
    let known = |r: &ResponderId| r.as_str() == "V1";
    let mut ok = item(CarePeriod::Day, None);
    ok.planned_responder = Some("V1".into());
    assert_eq!(check_plan(&[ok.clone()], &known), Ok(()));
    let bad = |f: &dyn Fn(&mut CarePlanItem)| {
        let mut i = ok.clone();
        f(&mut i);
        check_plan(&[i], &known).unwrap_err()
    };
    assert!(bad(&|i| i.id = "a b".into()).starts_with("care_plan[0].id"));
    assert!(bad(&|i| i.id = "x".repeat(33)).starts_with("care_plan[0].id"));
    assert!(bad(&|i| i.planned_responder = Some("V2".into())).contains("unknown responder V2"));
    assert!(bad(&|i| i.service = Some(ServiceKind::Meal)).starts_with("care_plan[0].service"));
    assert!(bad(&|i| {
        i.kind = CareKind::Service;
        i.service = Some(ServiceKind::Rescue)
    })
    .contains("rescue"));
    let window = |from: &str, to: &str| {
        Some(CareWindow {
            from_day: 1,
            to_day: None,
            from: from.into(),
            to: to.into(),
        })
    };
    assert!(bad(&|i| i.window = window("9:00", "10:00")).starts_with("care_plan[0].window.from"));
    assert!(bad(&|i| i.window = window("09:00", "24:01")).starts_with("care_plan[0].window.to"));
    assert!(bad(&|i| i.window = window("10:00", "10:00")).starts_with("care_plan[0].window"));
    assert!(bad(&|i| {
        i.period = CarePeriod::Month;
        i.window = Some(CareWindow {
            from_day: 29,
            to_day: None,
            from: "00:00".into(),
            to: "24:00".into(),
        })
    })
    .starts_with("care_plan[0].window.from_day: 29"));
}

fn occ(due_by: Timestamp, grid: &str, planned: &str, outcome: Outcome, settled: i64) -> Occurrence {
    Occurrence {
        period_from: Timestamp(due_by.0 - 7 * DAY_MS),
        opened_at: Timestamp(due_by.0 - 6 * DAY_MS),
        due_by,
        kind: CareKind::Visit,
        grid_id: grid.into(),
        planned: Some(planned.into()),
        incident_id: None,
        outcome,
        settled_at: (outcome != Outcome::Pending).then_some(Timestamp(due_by.0 + settled)),
        done_by: None,
    }
}

#[test]
fn a_report_by_hand() {
    // Wednesday 16 December 2026, noon. The week is 14–21 December, the month December.
    let at = ts(2026, 12, 16, 12);
    let e1: ElderId = "E1".into();
    let e2: ElderId = "E2".into();
    let g1: GridId = "G1".into();
    let g2: GridId = "G2".into();
    let visit = item(CarePeriod::Week, None);
    // E1 (G1, V1): done on time in week 1, missed in week 2, pending in week 3.
    let e1_hist = vec![
        occ(ts(2026, 12, 7, 0), "G1", "V1", Outcome::OnTime, -DAY_MS),
        occ(ts(2026, 12, 14, 0), "G1", "V1", Outcome::Missed, HOUR),
        occ(ts(2026, 12, 21, 0), "G1", "V1", Outcome::Pending, 0),
    ];
    // E2 (G2, V2): late in November's last week (not this month), then done late this week
    // — a week that closes on the 21st, done on the 15th, settled after `at`? No: settled
    // on the 15th, before `at`.
    let mut late = occ(ts(2026, 12, 21, 0), "G2", "V2", Outcome::Late, 0);
    late.settled_at = Some(ts(2026, 12, 15, 9));
    late.done_by = Some("V3".into());
    let e2_hist = vec![
        occ(ts(2026, 11, 30, 0), "G2", "V2", Outcome::Late, HOUR),
        late,
        // Settled after `at`: still pending as of `at`.
        occ(ts(2026, 12, 28, 0), "G2", "V2", Outcome::Missed, HOUR),
    ];
    let report = compliance(
        [
            ItemHistory {
                elder_id: &e1,
                grid_id: &g1,
                item_id: "w",
                item: Some(&visit),
                occurrences: &e1_hist,
            },
            ItemHistory {
                elder_id: &e2,
                grid_id: &g2,
                item_id: "w",
                item: Some(&visit),
                occurrences: &e2_hist,
            },
        ]
        .into_iter(),
        at,
        0,
    );
    assert_eq!(
        report.week,
        Span {
            from: ts(2026, 12, 14, 0),
            to: ts(2026, 12, 21, 0)
        }
    );
    let g1w = report.grids[&g1].week;
    // The week holds E1's pending occurrence (due 21st 00:00, the instant before is the 20th)
    // and not the one due at the week's first instant (that closed the week before).
    assert_eq!(
        (g1w.planned, g1w.pending, g1w.missed, g1w.on_time),
        (1, 1, 0, 0)
    );
    assert_eq!(g1w.on_time_share, None);
    let g1m = report.grids[&g1].month;
    assert_eq!(
        (g1m.planned, g1m.on_time, g1m.missed, g1m.pending),
        (3, 1, 1, 1)
    );
    assert_eq!(g1m.on_time_share, Some(0.5));
    let g2w = report.grids[&g2].week;
    assert_eq!((g2w.planned, g2w.late), (1, 1));
    // November's late one is not December's; the one opened later (28th) is not yet open
    // at `at`? It opens on the 22nd: not yet, so it is not counted at all.
    let g2m = report.grids[&g2].month;
    assert_eq!((g2m.planned, g2m.late, g2m.pending), (1, 1, 0));
    // Who answers: who did it (V3), else who was planned.
    assert_eq!(report.responders[&"V3".into()].week.late, 1);
    assert!(
        !report.responders.contains_key(&"V2".into())
            || report.responders[&"V2".into()].week.planned == 0
    );
    assert_eq!(report.responders[&"V1".into()].month.planned, 3);
    // Not visited: E1, since the close of the missed week (14th 00:00), last done on the 6th.
    assert_eq!(report.not_visited.len(), 1);
    let nv = &report.not_visited[0];
    assert_eq!((nv.elder_id.as_str(), nv.missed), ("E1", 1));
    assert_eq!(nv.last_done, Some(ts(2026, 12, 6, 0)));
    assert_eq!(nv.overdue_since, ts(2026, 12, 14, 0));
    assert_eq!(nv.overdue_ms, (2 * DAY_MS + 12 * HOUR) as u64);
    // An item no longer in the plan still counts, but is nobody's "not visited".
    let gone = compliance(
        std::iter::once(ItemHistory {
            elder_id: &e1,
            grid_id: &g1,
            item_id: "w",
            item: None,
            occurrences: &e1_hist,
        }),
        at,
        0,
    );
    assert!(gone.not_visited.is_empty());
    assert_eq!(gone.grids[&g1].month.missed, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, rng_seed: proptest::test_runner::RngSeed::Fixed(15), ..ProptestConfig::default() })]

    /// Every count equals a naive recount of the same history: for each span, each
    /// occurrence opened by `at` whose close falls in the span, by its outcome as of `at`.
    #[test]
    fn counts_equal_a_naive_recount(
        raw in proptest::collection::vec((0i64..60, 0u8..5, 0i64..4, 0u8..3, 0u8..3), 0..40),
        at_day in 0i64..60,
        offset_h in -12i32..13,
    ) {
        let base = days_from_civil(2026, 11, 1);
        let mut hist: Vec<Occurrence> = raw.iter().map(|&(d, o, settle_days, g, p)| {
            let due_by = Timestamp((base + d) * DAY_MS + 17 * HOUR);
            let outcome = [Outcome::Pending, Outcome::OnTime, Outcome::Late, Outcome::Missed, Outcome::Cancelled][o as usize];
            let mut x = occ(due_by, ["G1", "G2", "G3"][g as usize], ["V1", "V2", "V3"][p as usize], outcome, 0);
            x.opened_at = Timestamp(due_by.0 - DAY_MS);
            x.settled_at = (outcome != Outcome::Pending).then_some(Timestamp(due_by.0 + (settle_days - 1) * DAY_MS));
            x
        }).collect();
        hist.sort_by_key(|o| o.due_by);
        let at = Timestamp((base + at_day) * DAY_MS + 9 * HOUR);
        let off = offset_h * 3600;
        let e: ElderId = "E1".into();
        let g: GridId = "G1".into();
        let it = item(CarePeriod::Day, None);
        let report = compliance(std::iter::once(ItemHistory { elder_id: &e, grid_id: &g, item_id: "i", item: Some(&it), occurrences: &hist }), at, off);
        let week = period_of(CarePeriod::Week, at, off);
        let month = period_of(CarePeriod::Month, at, off);
        for grid in ["G1", "G2", "G3"] {
            for (span, got) in [(week, report.grids.get(&grid.into()).map(|w| w.week)), (month, report.grids.get(&grid.into()).map(|w| w.month))] {
                let mut n = [0u32; 5];
                for o in hist.iter().filter(|o| o.grid_id.as_str() == grid) {
                    if o.opened_at > at || o.due_by.0 <= span.from.0 || o.due_by.0 > span.to.0 {
                        continue;
                    }
                    let now = match o.settled_at { Some(t) if t <= at => o.outcome, _ => Outcome::Pending };
                    n[now as usize] += 1;
                }
                let got = got.unwrap_or_default();
                prop_assert_eq!([got.pending, got.on_time, got.late, got.missed, got.cancelled], n);
                prop_assert_eq!(got.planned, n[0] + n[1] + n[2] + n[3]);
                let decided = n[1] + n[2] + n[3];
                prop_assert_eq!(got.on_time_share, (decided > 0).then(|| f64::from(n[1]) / f64::from(decided)));
            }
        }
    }
}
