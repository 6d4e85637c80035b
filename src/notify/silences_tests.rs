use super::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// 2024-06-02T00:00:00Z, a Sunday.
const SUNDAY: i64 = 1_717_286_400_000;

fn eq(name: &str, value: &str) -> SilenceMatcher {
    SilenceMatcher {
        name: name.into(),
        value: value.into(),
        is_regex: false,
        is_equal: true,
    }
}

fn re(name: &str, value: &str) -> SilenceMatcher {
    SilenceMatcher {
        is_regex: true,
        ..eq(name, value)
    }
}

fn input(matchers: Vec<SilenceMatcher>, starts_at: i64, ends_at: i64) -> SilenceInput {
    SilenceInput {
        id: String::new(),
        matchers,
        starts_at,
        ends_at,
        created_by: "me".into(),
        comment: "why".into(),
        schedule: None,
    }
}

fn store() -> Silences {
    Silences::in_memory(DEFAULT_RETENTION_MS)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied())
}

#[test]
fn states_follow_the_clock() {
    let s = store();
    let now = SUNDAY;
    let id = s
        .set(
            input(vec![eq("job", "api")], now + HOUR, now + 2 * HOUR),
            now,
        )
        .unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "a version 4 UUID");
    let sil = s.get(&id).unwrap();
    assert_eq!(sil.state(now), SilenceState::Pending);
    assert_eq!(sil.state(now + HOUR), SilenceState::Active);
    assert_eq!(sil.state(now + 2 * HOUR - 1), SilenceState::Active);
    assert_eq!(sil.state(now + 2 * HOUR), SilenceState::Expired);
    assert_eq!(sil.updated_at, now);
}

#[test]
fn start_in_the_past_is_moved_to_now() {
    let s = store();
    let id = s
        .set(
            input(vec![eq("a", "b")], SUNDAY - HOUR, SUNDAY + HOUR),
            SUNDAY,
        )
        .unwrap();
    assert_eq!(s.get(&id).unwrap().starts_at, SUNDAY);
}

#[test]
fn validation_uses_alertmanagers_reasons() {
    let s = store();
    let refuse = |matchers: Vec<SilenceMatcher>, start: i64, end: i64| match s
        .set(input(matchers, start, end), SUNDAY)
    {
        Err(SilenceError::Invalid(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refuse(vec![], SUNDAY, SUNDAY + HOUR),
        "at least one matcher required"
    );
    assert_eq!(
        refuse(vec![eq("a", "")], SUNDAY, SUNDAY + HOUR),
        "at least one matcher must not match the empty string"
    );
    assert_eq!(
        refuse(vec![re("a", ".*"), eq("b", "")], SUNDAY, SUNDAY + HOUR),
        "at least one matcher must not match the empty string"
    );
    assert_eq!(
        refuse(vec![eq("1a", "x")], SUNDAY, SUNDAY + HOUR),
        "invalid label matcher 0: invalid label name \"1a\""
    );
    assert!(
        refuse(vec![eq("a", "x"), re("b", "(")], SUNDAY, SUNDAY + HOUR)
            .starts_with("invalid label matcher 1: invalid regular expression \"(\": "),
    );
    assert_eq!(
        refuse(vec![eq("a", "x")], SUNDAY + 2 * HOUR, SUNDAY + HOUR),
        "end time must not be before start time"
    );
    // A negative matcher alone is fine: it does not "match the empty
    // string" in Alertmanager's sense.
    assert!(s
        .set(
            input(
                vec![SilenceMatcher {
                    is_equal: false,
                    ..eq("a", "x")
                }],
                SUNDAY,
                SUNDAY + HOUR
            ),
            SUNDAY
        )
        .is_ok());
    assert_eq!(s.list().len(), 1, "refused silences are not stored");
}

#[test]
fn updates_edit_in_place_or_replace_as_alertmanager_does() {
    let s = store();
    let now = SUNDAY;
    let id = s
        .set(input(vec![eq("a", "b")], now, now + HOUR), now)
        .unwrap();

    // Active, same matchers and start, new end and comment: in place.
    let later = now + MIN;
    let mut change = input(vec![eq("a", "b")], now + 500, now + 2 * HOUR);
    change.id = id.clone();
    change.comment = "longer".into();
    assert_eq!(s.set(change, later).unwrap(), id);
    let sil = s.get(&id).unwrap();
    assert_eq!((sil.ends_at, sil.updated_at), (now + 2 * HOUR, later));
    assert_eq!(sil.comment, "longer");

    // Different matchers: the old one expires, a new one starts now.
    let mut change = input(vec![eq("a", "c")], now, now + 2 * HOUR);
    change.id = id.clone();
    let new_id = s.set(change, later).unwrap();
    assert_ne!(new_id, id);
    assert_eq!(s.get(&id).unwrap().ends_at, later);
    assert_eq!(s.get(&id).unwrap().state(later), SilenceState::Expired);
    assert_eq!(s.get(&new_id).unwrap().starts_at, later);

    // Active, start moved: replaced.
    let mut change = input(vec![eq("a", "c")], later + HOUR, later + 3 * HOUR);
    change.id = new_id.clone();
    let third = s.set(change, later + 1).unwrap();
    assert_ne!(third, new_id);

    // An expired silence is never changed: a new one is created.
    let mut change = input(vec![eq("a", "b")], now, now + 5 * HOUR);
    change.id = id.clone();
    let fourth = s.set(change, later + 2).unwrap();
    assert_ne!(fourth, id);
    assert_eq!(s.get(&id).unwrap().ends_at, later, "expired one untouched");

    // Unknown ID.
    let mut change = input(vec![eq("a", "b")], now, now + HOUR);
    change.id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee".into();
    assert_eq!(s.set(change, now), Err(SilenceError::NotFound));
}

#[test]
fn pending_silence_updates_in_place_unless_it_would_start_in_the_past() {
    let s = store();
    let now = SUNDAY;
    let id = s
        .set(input(vec![eq("a", "b")], now + HOUR, now + 2 * HOUR), now)
        .unwrap();
    let mut change = input(vec![eq("a", "b")], now + 2 * HOUR, now + 3 * HOUR);
    change.id = id.clone();
    assert_eq!(s.set(change, now).unwrap(), id);
    assert_eq!(s.get(&id).unwrap().starts_at, now + 2 * HOUR);
    let mut change = input(vec![eq("a", "b")], now - MIN, now + 3 * HOUR);
    change.id = id.clone();
    let new_id = s.set(change, now).unwrap();
    assert_ne!(new_id, id);
    // The pending one expired with start = end = now.
    let old = s.get(&id).unwrap();
    assert_eq!((old.starts_at, old.ends_at), (now, now));
}

#[test]
fn refused_update_leaves_the_old_silence_alone() {
    let s = store();
    let id = s
        .set(input(vec![eq("a", "b")], SUNDAY, SUNDAY + HOUR), SUNDAY)
        .unwrap();
    let mut change = input(vec![re("a", "(")], SUNDAY, SUNDAY + HOUR);
    change.id = id.clone();
    assert!(matches!(
        s.set(change, SUNDAY + 1),
        Err(SilenceError::Invalid(_))
    ));
    assert_eq!(s.get(&id).unwrap().state(SUNDAY + 1), SilenceState::Active);
}

#[test]
fn expire_ends_now_and_is_idempotent() {
    let s = store();
    let now = SUNDAY;
    let active = s
        .set(input(vec![eq("a", "b")], now, now + HOUR), now)
        .unwrap();
    let pending = s
        .set(input(vec![eq("a", "c")], now + HOUR, now + 2 * HOUR), now)
        .unwrap();
    s.expire(&active, now + MIN).unwrap();
    s.expire(&pending, now + MIN).unwrap();
    let a = s.get(&active).unwrap();
    assert_eq!(
        (a.starts_at, a.ends_at, a.updated_at),
        (now, now + MIN, now + MIN)
    );
    let p = s.get(&pending).unwrap();
    assert_eq!((p.starts_at, p.ends_at), (now + MIN, now + MIN));
    s.expire(&active, now + 2 * MIN).unwrap();
    assert_eq!(s.get(&active).unwrap().ends_at, now + MIN);
    assert_eq!(s.expire("nope", now), Err(SilenceError::NotFound));
}

#[test]
fn silencer_answers_active_matching_silences_sorted() {
    let s = store();
    let now = SUNDAY;
    let a = s
        .set(input(vec![eq("job", "api")], now, now + HOUR), now)
        .unwrap();
    let b = s
        .set(input(vec![re("job", "api|db")], now, now + 2 * HOUR), now)
        .unwrap();
    let pending = s
        .set(
            input(vec![eq("job", "api")], now + HOUR, now + 3 * HOUR),
            now,
        )
        .unwrap();
    let negative = SilenceMatcher {
        is_equal: false,
        ..eq("env", "prod")
    };
    let c = s.set(input(vec![negative], now, now + HOUR), now).unwrap();
    let api = labels(&[("job", "api"), ("env", "dev")]);
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        s.silenced_by(&api, now),
        sorted(vec![a.clone(), b.clone(), c.clone()])
    );
    // The cached answer is filtered by the time of each call.
    assert_eq!(
        s.silenced_by(&api, now + HOUR - 1),
        sorted(vec![a.clone(), b.clone(), c.clone()])
    );
    // `a` ended, the pending one started.
    assert_eq!(
        s.silenced_by(&api, now + HOUR),
        sorted(vec![b.clone(), pending.clone()])
    );
    assert_eq!(
        s.silenced_by(
            &labels(&[("job", "api"), ("env", "prod")]),
            now + 2 * HOUR - 1
        ),
        sorted(vec![b.clone(), pending.clone()]),
        "env!=prod does not match"
    );
    // A change invalidates the cache.
    s.expire(&b, now + 1).unwrap();
    assert_eq!(s.silenced_by(&api, now + 2), sorted(vec![a, c]));
    assert!(s
        .silenced_by(&labels(&[("job", "other"), ("env", "prod")]), now)
        .is_empty());
}

#[test]
fn gc_removes_silences_after_retention() {
    let s = Silences::in_memory(HOUR);
    let id = s
        .set(input(vec![eq("a", "b")], SUNDAY, SUNDAY + HOUR), SUNDAY)
        .unwrap();
    assert_eq!(s.gc(SUNDAY + 2 * HOUR - 1).unwrap(), 0);
    assert_eq!(s.count_states(SUNDAY + 2 * HOUR - 1), (0, 0, 1));
    assert_eq!(s.gc(SUNDAY + 2 * HOUR).unwrap(), 1);
    assert!(s.get(&id).is_none());
}

#[test]
fn silences_survive_reopening_and_expired_ones_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let now = SUNDAY;
    let (kept, gone) = {
        let s = Silences::open(dir.path(), HOUR, now).unwrap();
        let mut sched = input(vec![re("job", "a.*"), eq("x", "y")], now, now + 10 * HOUR);
        sched.schedule = Some(Some(
            Schedule::parse(&serde_json::json!([{"weekdays": ["sunday"], "times": [{"start_time": "02:00", "end_time": "04:00"}], "years": [2024]}]))
                .unwrap(),
        ));
        let kept = s.set(sched, now).unwrap();
        let gone = s
            .set(input(vec![eq("a", "b")], now, now + HOUR), now)
            .unwrap();
        (kept, gone)
    };
    let s = Silences::open(dir.path(), HOUR, now + 3 * HOUR).unwrap();
    assert!(s.get(&gone).is_none(), "past its retention at open");
    let sil = s.get(&kept).unwrap();
    assert_eq!(sil.matchers, vec![re("job", "a.*"), eq("x", "y")]);
    assert_eq!(
        (sil.created_by.as_str(), sil.comment.as_str()),
        ("me", "why")
    );
    let schedule = sil.schedule.as_ref().unwrap();
    assert_eq!(schedule.spec()["years"], serde_json::Value::Null);
    assert_eq!(schedule.spec()[0]["years"][0], "2024");
    assert_eq!(
        s.silenced_by(&labels(&[("job", "ab"), ("x", "y")]), now + 3 * HOUR),
        vec![kept]
    );
}

#[test]
fn scheduled_silence_mutes_only_inside_its_windows() {
    let s = store();
    let now = SUNDAY; // Sunday 00:00 UTC
    let mut sched = input(vec![eq("job", "db")], now, now + 14 * 24 * HOUR);
    sched.schedule = Some(Some(
        Schedule::parse(&serde_json::json!([
            {"weekdays": ["sunday"], "times": [{"start_time": "02:00", "end_time": "04:00"}]}
        ]))
        .unwrap(),
    ));
    let id = s.set(sched, now).unwrap();
    let db = labels(&[("job", "db")]);
    let at = |t: i64| (s.get(&id).unwrap().state(t), s.silenced_by(&db, t).len());
    assert_eq!(at(now + HOUR), (SilenceState::Pending, 0));
    assert_eq!(at(now + 2 * HOUR), (SilenceState::Active, 1));
    assert_eq!(at(now + 4 * HOUR - 1), (SilenceState::Active, 1));
    assert_eq!(at(now + 4 * HOUR), (SilenceState::Pending, 0));
    // Monday 03:00: not a Sunday.
    assert_eq!(at(now + 27 * HOUR), (SilenceState::Pending, 0));
    // The next Sunday.
    assert_eq!(
        at(now + 7 * 24 * HOUR + 3 * HOUR),
        (SilenceState::Active, 1)
    );
    // After its end: expired, whatever the window.
    assert_eq!(
        at(now + 14 * 24 * HOUR + 3 * HOUR),
        (SilenceState::Expired, 0)
    );
}

#[test]
fn scheduled_silence_in_a_time_zone() {
    // 02:00-04:00 in Berlin (UTC+2 in June) is 00:00-02:00 UTC.
    let schedule = Schedule::parse(&serde_json::json!([
        {"times": [{"start_time": "02:00", "end_time": "04:00"}], "location": "Europe/Berlin"}
    ]))
    .unwrap();
    assert!(schedule.contains(SUNDAY));
    assert!(schedule.contains(SUNDAY + 2 * HOUR - 1));
    assert!(!schedule.contains(SUNDAY + 2 * HOUR));
}

#[test]
fn schedule_errors_name_the_problem() {
    let bad = |v: serde_json::Value| Schedule::parse(&v).unwrap_err();
    assert!(bad(serde_json::json!([{"weekdays": ["funday"]}]))
        .contains("funday is not a valid weekday"));
    assert!(
        bad(serde_json::json!([{"times": [{"start_time": "05:00", "end_time": "04:00"}]}]))
            .contains("start time cannot be equal or greater than end time")
    );
    assert!(bad(serde_json::json!([{"location": "Mars/Olympus"}])).starts_with("timeIntervals: "));
    assert!(bad(serde_json::json!([{"weekday": ["monday"]}])).contains("weekday"));
    assert!(bad(serde_json::json!({"weekdays": ["monday"]})).starts_with("timeIntervals: "));
}

#[test]
fn update_without_schedule_keeps_it_and_a_new_schedule_replaces_the_silence() {
    let s = store();
    let now = SUNDAY;
    let schedule =
        || Schedule::parse(&serde_json::json!([{"weekdays": ["monday:friday"]}])).unwrap();
    let mut first = input(vec![eq("a", "b")], now, now + HOUR);
    first.schedule = Some(Some(schedule()));
    let id = s.set(first, now).unwrap();
    let mut change = input(vec![eq("a", "b")], now, now + 2 * HOUR);
    change.id = id.clone();
    assert_eq!(s.set(change, now + 1).unwrap(), id);
    assert!(s.get(&id).unwrap().schedule.is_some());
    let mut change = input(vec![eq("a", "b")], now, now + 2 * HOUR);
    change.id = id.clone();
    change.schedule = Some(None);
    let new_id = s.set(change, now + 2).unwrap();
    assert_ne!(new_id, id);
    assert!(s.get(&new_id).unwrap().schedule.is_none());
}

/// The store against a model: random sets and expiries, then every
/// silence's state and the silencer's answer compared with a plain list.
mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Create {
            value: u8,
            start: i64,
            len: i64,
        },
        Update {
            pick: usize,
            value: u8,
            start: i64,
            len: i64,
        },
        Expire {
            pick: usize,
        },
        Tick(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, -5i64..5, 1i64..10).prop_map(|(value, start, len)| Op::Create {
                value,
                start,
                len
            }),
            (0usize..8, 0u8..3, -5i64..5, 1i64..10).prop_map(|(pick, value, start, len)| {
                Op::Update {
                    pick,
                    value,
                    start,
                    len,
                }
            }),
            (0usize..8).prop_map(|pick| Op::Expire { pick }),
            (1i64..4).prop_map(Op::Tick),
        ]
    }

    proptest! {
        #[test]
        fn store_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
            let s = store();
            let mut now = SUNDAY;
            // id -> (value, start, end)
            let mut model: Vec<(String, u8, i64, i64)> = Vec::new();
            for op in ops {
                match op {
                    Op::Create { value, start, len } => {
                        let (st, en) = (now + start * MIN, now + (start + len) * MIN);
                        let r = s.set(input(vec![eq("v", &value.to_string())], st, en), now);
                        if en < now.max(st) {
                            prop_assert!(r.is_err());
                        } else {
                            model.push((r.unwrap(), value, st.max(now), en));
                        }
                    }
                    Op::Update { pick, value, start, len } => {
                        if model.is_empty() { continue; }
                        let i = pick % model.len();
                        let (id, old_value, old_start, old_end) = model[i].clone();
                        let (st, en) = (now + start * MIN, now + (start + len) * MIN);
                        let mut change = input(vec![eq("v", &value.to_string())], st, en);
                        change.id = id.clone();
                        let old_state = if now < old_start { 0 } else if now < old_end { 1 } else { 2 };
                        let in_place = value == old_value && match old_state {
                            0 => st >= now,
                            1 => st.div_euclid(1000) == old_start.div_euclid(1000) && en >= now,
                            _ => false,
                        };
                        let final_start = if in_place { st } else { st.max(now) };
                        let r = s.set(change, now);
                        if en < final_start {
                            prop_assert!(r.is_err());
                            continue;
                        }
                        let new_id = r.unwrap();
                        if in_place {
                            prop_assert_eq!(&new_id, &id);
                            model[i] = (id, value, st, en);
                        } else {
                            prop_assert_ne!(&new_id, &id);
                            match old_state {
                                0 => { model[i].2 = now; model[i].3 = now; }
                                1 => model[i].3 = now,
                                _ => {}
                            }
                            model.push((new_id, value, final_start, en));
                        }
                    }
                    Op::Expire { pick } => {
                        if model.is_empty() { continue; }
                        let i = pick % model.len();
                        s.expire(&model[i].0, now).unwrap();
                        if now < model[i].2 { model[i].2 = now; model[i].3 = now; }
                        else if now < model[i].3 { model[i].3 = now; }
                    }
                    Op::Tick(minutes) => now += minutes * MIN,
                }
                for (id, _, st, en) in &model {
                    let sil = s.get(id).unwrap();
                    prop_assert_eq!((sil.starts_at, sil.ends_at), (*st, *en));
                }
                for value in 0u8..3 {
                    let mut want: Vec<String> = model
                        .iter()
                        .filter(|(_, v, st, en)| *v == value && *st <= now && now < *en)
                        .map(|(id, ..)| id.clone())
                        .collect();
                    want.sort();
                    prop_assert_eq!(s.silenced_by(&labels(&[("v", &value.to_string())]), now), want);
                }
            }
        }
    }
}

/// The dispatcher asks for every alert at every flush: after the first
/// lookup of a label set, answers come from the cache. Prints the costs
/// (`cargo test --release --lib silencer_lookup_cost -- --nocapture`).
#[test]
fn silencer_lookup_cost() {
    let s = store();
    let now = SUNDAY;
    for i in 0..200 {
        s.set(
            input(
                vec![eq("job", &format!("job{i}")), re("instance", "db-.*")],
                now,
                now + HOUR,
            ),
            now,
        )
        .unwrap();
    }
    let sets: Vec<Labels> = (0..5_000)
        .map(|i| {
            Labels::new([
                ("alertname", "Down".to_string()),
                ("instance", format!("db-{i}")),
                ("job", format!("job{}", i % 400)),
            ])
        })
        .collect();
    let timed = || {
        let start = std::time::Instant::now();
        let silenced = sets
            .iter()
            .filter(|l| !s.silenced_by(l, now).is_empty())
            .count();
        (start.elapsed(), silenced)
    };
    let (cold, silenced) = timed();
    let (warm, again) = timed();
    assert_eq!((silenced, again), (2_600, 2_600));
    println!(
        "200 silences, 5,000 label sets: first lookup {:.1} µs, cached {:.2} µs per label set",
        cold.as_secs_f64() * 1e6 / 5_000.0,
        warm.as_secs_f64() * 1e6 / 5_000.0
    );
    assert!(
        warm < cold,
        "cached lookups ({warm:?}) must beat scans ({cold:?})"
    );

    let dir = tempfile::tempdir().unwrap();
    let disk = Silences::open(dir.path(), HOUR, now).unwrap();
    let start = std::time::Instant::now();
    for i in 0..200 {
        disk.set(
            input(vec![eq("job", &format!("j{i}"))], now, now + HOUR),
            now,
        )
        .unwrap();
    }
    println!(
        "a silence written through to SQLite: {:.0} µs",
        start.elapsed().as_secs_f64() * 1e6 / 200.0
    );
}
