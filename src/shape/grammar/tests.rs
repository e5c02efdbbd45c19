use super::*;
use proptest::prelude::*;
use smallvec::smallvec;

fn parse(q: &str) -> Result<Spec, ShapeError> {
    Spec::parse_query(q.as_bytes(), &Limits::default())
}

fn refused(q: &str) -> String {
    match parse(q) {
        Ok(spec) => panic!("{q:?} was accepted as {spec:?}"),
        Err(e) => e.arg,
    }
}

/// Each form parses to exactly this spec, and prints to text that parses back to it.
#[test]
fn every_form_parses_to_its_spec_and_back() {
    let cases: Vec<(&str, Spec)> = vec![
        ("", Spec::default()),
        (
            "status=503",
            Spec {
                status: Some(Dist::Fixed(503)),
                ..Spec::default()
            },
        ),
        (
            "status=503:20,429:5",
            Spec {
                status: Some(Dist::Weighted(smallvec![(503, 20.0), (429, 5.0)])),
                ..Spec::default()
            },
        ),
        (
            "delay=10ms",
            Spec {
                delay: Some(Dist::Fixed(10_000)),
                ..Spec::default()
            },
        ),
        (
            "delay=10ms:50,200ms:1,1s:0.5",
            Spec {
                delay: Some(Dist::Weighted(smallvec![
                    (10_000, 50.0),
                    (200_000, 1.0),
                    (1_000_000, 0.5)
                ])),
                ..Spec::default()
            },
        ),
        (
            "delay=5ms..50ms",
            Spec {
                delay: Some(Dist::Uniform(5_000, 50_000)),
                ..Spec::default()
            },
        ),
        (
            "delay=p50:5ms,p99:80ms",
            Spec {
                delay: Some(Dist::LogNormal {
                    p50: 5_000,
                    p99: 80_000,
                }),
                ..Spec::default()
            },
        ),
        (
            "delay=1.5s&size=1.5KiB",
            Spec {
                delay: Some(Dist::Fixed(1_500_000)),
                size: Some(Dist::Fixed(1536)),
                ..Spec::default()
            },
        ),
        (
            "delay=250ns",
            Spec {
                delay: Some(Dist::Fixed(1)),
                ..Spec::default()
            },
        ),
        (
            "size=1024:10,512:5&close=5&reset=0.5",
            Spec {
                size: Some(Dist::Weighted(smallvec![(1024, 10.0), (512, 5.0)])),
                close: Some(5.0),
                reset: Some(0.5),
                ..Spec::default()
            },
        ),
        (
            "size=100..10000&drip=10x100ms&seed=42",
            Spec {
                size: Some(Dist::Uniform(100, 10_000)),
                drip: Some(Drip {
                    pieces: 10,
                    interval_us: 100_000,
                }),
                seed: Some(42),
                ..Spec::default()
            },
        ),
        (
            "size=1MiB&header=X-A:b%20c&header=X-Empty:",
            Spec {
                size: Some(Dist::Fixed(1 << 20)),
                headers: vec![("X-A".into(), "b c".into()), ("X-Empty".into(), "".into())],
                ..Spec::default()
            },
        ),
        (
            "size=2k&delay=1m",
            Spec {
                size: Some(Dist::Fixed(2000)),
                delay: Some(Dist::Fixed(60_000_000)),
                ..Spec::default()
            },
        ),
    ];
    let roomy = Limits {
        max_delay_us: 120_000_000,
        ..Limits::default()
    };
    for (query, want) in cases {
        let got =
            Spec::parse_query(query.as_bytes(), &roomy).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(got, want, "{query}");
        let printed = got.to_string();
        let again = Spec::parse_query(printed.as_bytes(), &roomy).unwrap();
        assert_eq!(again, got, "{query} printed as {printed}");
    }
}

#[test]
fn bad_input_is_refused_naming_its_argument() {
    for (query, arg) in [
        ("nope=1", "nope"),
        ("delay", "delay"),
        ("delay=", "delay"),
        ("delay=5", "delay"),
        ("delay=-5ms", "delay"),
        ("delay=5xs", "delay"),
        ("delay=1e400ms", "delay"),
        ("delay=99999999999999999999s", "delay"),
        ("delay=11s", "delay"),
        ("delay=1.2.3s", "delay"),
        ("delay=p50:80ms,p99:5ms", "delay"),
        ("delay=p50:0ms,p99:5ms", "delay"),
        ("delay=p99:5ms,p50:1ms", "delay"),
        ("delay=50ms..5ms", "delay"),
        ("delay=10ms,20ms", "delay"),
        ("delay=10ms:60,20ms:41", "delay"),
        ("delay=1ms&delay=2ms", "delay"),
        ("delay=%zz", "delay"),
        ("delay=%", "delay"),
        ("delay=%ff", "delay"),
        ("status=99", "status"),
        ("status=600", "status"),
        ("status=abc", "status"),
        ("status=503:101", "status"),
        ("status=503:-1", "status"),
        ("size=65MiB", "size"),
        ("size=5TB", "size"),
        ("size=1..", "size"),
        ("close=101", "close"),
        ("close=x", "close"),
        ("reset=-1", "reset"),
        ("drip=0x10ms", "drip"),
        ("drip=1001x1ms", "drip"),
        ("drip=10x2s", "drip"),
        ("drip=4294967295x18446744073709551615us", "drip"),
        ("drip=10", "drip"),
        ("header=Content-Length:5", "header"),
        ("header=X-A", "header"),
        ("header=Bad Name:x", "header"),
        ("header=X-A:a%0Db", "header"),
        ("seed=-1", "seed"),
        ("seed=18446744073709551616", "seed"),
        // From a second implementation's refusals (helper branch h-grammar).
        ("Status=503", "Status"),
        ("status=503:20,429", "status"),
        ("status=200..300", "status"),
        ("status=p50:200,p99:500", "status"),
        ("close=1e1", "close"),
        ("reset=NaN", "reset"),
        ("close=inf", "close"),
        ("close=.", "close"),
        ("delay=1ms:50,1m:1", "delay"),
        ("delay=1ms..1m", "delay"),
        ("delay=p50:5ms,p99:80ms,p999:1s", "delay"),
        ("delay=10%20ms", "delay"),
        ("size=1.5", "size"),
        ("size=99999999999999999999GiB", "size"),
        ("size=1kb", "size"),
        ("drip=99999999999x1us", "drip"),
        ("drip=1000x99999999999999s", "drip"),
        ("header=X%20A:1", "header"),
        ("header=:1", "header"),
        ("header=X-A:1%0D%0AX-B:2", "header"),
        ("header=X-A:%00", "header"),
        ("header=X-A:%C3%A9", "header"),
        ("header=x-CERBERUS-shape:1", "header"),
        ("seed=+1", "seed"),
    ] {
        assert_eq!(refused(query), arg, "{query}");
    }
    let e = parse("status=503:60,500:60").unwrap_err();
    assert!(e.why.contains("120"), "{e}");
}

#[test]
fn long_lists_and_many_headers_are_refused_quickly() {
    let huge = vec!["1ms:0.001"; 10_000].join(",");
    let started = std::time::Instant::now();
    assert_eq!(refused(&format!("delay={huge}")), "delay");
    assert_eq!(
        refused(&format!("status={}", vec!["500:0.001"; 10_000].join(","))),
        "status"
    );
    let headers: Vec<String> = (0..17).map(|i| format!("header=X-{i}:v")).collect();
    assert_eq!(refused(&headers.join("&")), "header");
    let many = "&".repeat(100_000) + "seed=1";
    assert_eq!(parse(&many).unwrap().seed, Some(1));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn query_arguments_replace_the_routes_and_add_headers() {
    let limits = Limits::default();
    let mut route = Spec::default();
    route.set("delay", "5ms", &limits).unwrap();
    route.set("close", "5", &limits).unwrap();
    route.set("header", "X-Route:1", &limits).unwrap();
    let asked = parse("close=0&header=X-Asked:2").unwrap();
    let both = route.overlay(&asked);
    assert_eq!(both.delay, Some(Dist::Fixed(5_000)));
    assert_eq!(both.close, Some(0.0));
    assert_eq!(both.headers.len(), 2);
}

#[test]
fn plans_follow_the_spec_and_a_seed_repeats_them() {
    let limits = Limits::default();
    let spec = parse("status=503:20,429:5&delay=p50:5ms,p99:80ms&size=0..100&close=10").unwrap();
    let run = |seed| {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..1000)
            .map(|_| spec.plan(&mut rng, &limits))
            .collect::<Vec<_>>()
    };
    let plans = run(5);
    assert_eq!(plans, run(5));
    assert_ne!(plans, run(6));
    assert!(plans
        .iter()
        .all(|p| p.size.unwrap() <= 100 && p.delay_us <= 10_000_000));
    let closes = plans.iter().filter(|p| p.close).count();
    assert!((50..150).contains(&closes), "{closes}");
    let fixed = parse("status=201&delay=3ms&close=100&reset=0").unwrap();
    let plan = fixed.plan(&mut fastrand::Rng::with_seed(1), &limits);
    let want = Plan {
        status: Some(201),
        delay_us: 3000,
        size: None,
        close: true,
        reset: false,
    };
    assert_eq!(plan, want);
}

/// Distributions that parse: the values in range of the default limits.
fn any_dist(max: u64, time: bool) -> impl Strategy<Value = Dist> {
    let value = 0..=max;
    let _ = time;
    prop_oneof![
        value.clone().prop_map(Dist::Fixed),
        (value.clone(), value.clone()).prop_map(|(a, b)| Dist::Uniform(a.min(b), a.max(b))),
        (1..=max, 1..=max).prop_map(|(a, b)| {
            if a == b {
                Dist::Fixed(a)
            } else {
                Dist::LogNormal {
                    p50: a.min(b),
                    p99: a.max(b),
                }
            }
        }),
        proptest::collection::vec((value, 0u32..=2000), 1..6).prop_map(|entries| {
            // Percentages in hundredths, scaled to sum to at most 100.
            Dist::Weighted(
                entries
                    .into_iter()
                    .map(|(v, p)| (v, f64::from(p) / 100.0))
                    .collect(),
            )
        }),
    ]
}

fn any_spec() -> impl Strategy<Value = Spec> {
    let status = prop_oneof![
        (200u64..=599).prop_map(Dist::Fixed),
        proptest::collection::vec((200u64..=599, 0u32..=2000), 1..5).prop_map(|e| {
            Dist::Weighted(
                e.into_iter()
                    .map(|(v, p)| (v, f64::from(p) / 100.0))
                    .collect(),
            )
        }),
    ];
    (
        proptest::option::of(status),
        proptest::option::of(any_dist(10_000_000, true)),
        proptest::option::of(any_dist(64 << 20, false)),
        proptest::option::of((1u32..=1000, 0u64..=10_000)),
        proptest::option::of(0u32..=10_000),
        proptest::option::of(0u32..=10_000),
        proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,8}", "[ -~]{0,12}"), 0..4),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |(status, delay, size, drip, close, reset, headers, seed)| Spec {
                status,
                delay,
                size,
                drip: drip.map(|(pieces, interval_us)| Drip {
                    pieces,
                    interval_us,
                }),
                close: close.map(|c| f64::from(c) / 100.0),
                reset: reset.map(|r| f64::from(r) / 100.0),
                headers: headers
                    .into_iter()
                    .filter(|(n, _)| !SERVER_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
                    .map(|(n, v)| (n, v.trim_matches(' ').to_owned()))
                    .collect(),
                seed,
            },
        )
}

proptest! {
    #[test]
    fn a_printed_spec_parses_back_to_itself(spec in any_spec()) {
        let printed = spec.to_string();
        let again = Spec::parse_query(printed.as_bytes(), &Limits::default());
        prop_assert_eq!(again, Ok(spec), "{}", printed);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Spec::parse_query(&bytes, &Limits::default());
    }

    #[test]
    fn arbitrary_values_of_known_keys_never_panic(
        key in proptest::sample::select(KEYS.to_vec()),
        value in "[0-9a-zA-Z.:,%x+-]{0,40}",
    ) {
        let query = format!("{key}={value}");
        if let Ok(spec) = Spec::parse_query(query.as_bytes(), &Limits::default()) {
            let mut rng = fastrand::Rng::with_seed(1);
            let plan = spec.plan(&mut rng, &Limits::default());
            prop_assert!(plan.delay_us <= 10_000_000);
        }
    }
}
