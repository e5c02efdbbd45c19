//! Unit tests of parsing and validating the configuration.

use super::*;

fn parse(text: &str) -> Result<Config, String> {
    let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
    c.validate()?;
    Ok(c)
}

#[test]
fn empty_file_gives_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn file_errors_are_one_line_naming_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("cerberus-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "workers = 1\n\n[default_response]\nbody = 1\n").unwrap();
    let text = Config::load(&path).unwrap_err().to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.contains("bad.toml") && text.contains("line 4, column 8"),
        "{text}"
    );
    std::fs::write(&path, "worker = 1\n").unwrap();
    let text = Config::load(&path).unwrap_err().to_string();
    assert!(
        text.contains("unknown field `worker`") && text.contains("line 1, column 1"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shipped_example_states_the_defaults() {
    let text = include_str!("../../deploy/cerberus.toml");
    assert_eq!(parse(text).unwrap(), Config::default());
}

#[test]
fn reads_every_kind_of_field() {
    let c = parse(
        r#"
        listen = "[::]:9000"
        workers = 2
        pin = false
        metrics_listen = "off"
        json = "off"
        header_timeout = "250ms"
        [default_response]
        status = 404
        body = "nope"
        [[route]]
        path = "/echo"
        method = "POST"
        handler = "echo"
        [[route]]
        prefix = "/static/"
        body = "hi"
        headers = { "X-A" = "b" }
        "#,
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.metrics_listen, MetricsListen::Off);
    assert_eq!(c.header_timeout, Duration::from_millis(250));
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[1].headers["X-A"], "b");
}

#[test]
fn rejects_unknown_keys_and_bad_values_by_name() {
    assert!(parse("listn = \"x\"").unwrap_err().contains("listn"));
    assert!(parse("[[route]]\npath = \"/\"\nbdy = \"x\"")
        .unwrap_err()
        .contains("bdy"));
    assert!(parse("[[route]]\nbody = \"x\"")
        .unwrap_err()
        .contains("path or prefix"));
    assert!(parse("header_timeout = \"0s\"")
        .unwrap_err()
        .contains("header_timeout"));
    assert!(parse("[default_response]\nstatus = 99")
        .unwrap_err()
        .contains("status 99"));
    assert!(
        parse("[default_response]\nheaders = { \"Content-Length\" = \"1\" }")
            .unwrap_err()
            .contains("Content-Length")
    );
}

#[test]
fn every_timeout_is_bounded_naming_key_and_range() {
    for (text, key) in [
        ("drain_timeout = \"18446744073709551615s\"", "drain_timeout"),
        ("header_timeout = \"25h\"", "header_timeout"),
        ("write_timeout = \"1ms\"", "write_timeout"),
        ("keepalive_timeout = \"0s\"", "keepalive_timeout"),
        ("body_timeout = \"100days\"", "body_timeout"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains(key) && e.contains("between 10ms and 24h"), "{e}");
    }
    assert!(parse("drain_timeout = \"24h\"\nheader_timeout = \"10ms\"").is_ok());
}

#[test]
fn no_body_with_204_205_or_304() {
    for status in [204, 205, 304] {
        let e = parse(&format!("[default_response]\nstatus = {status}")).unwrap_err();
        assert!(
            e.starts_with("default_response: status")
                && e.contains("must not have a body, but body is set")
                && e.contains("set body = \"\""),
            "{e}"
        );
        let route = format!("[[route]]\npath = \"/a\"\nstatus = {status}");
        let e = parse(&format!("{route}\nbody = \"x\"")).unwrap_err();
        assert!(e.starts_with("route #1 (path = \"/a\"): status"), "{e}");
        let e = parse(&format!("{route}\nbody_file = \"/x\"")).unwrap_err();
        assert!(e.contains("body_file is set"), "{e}");
        assert!(parse(&format!("{route}\nbody = \"\"")).is_ok());
        assert!(parse(&format!(
            "{route}\n[default_response]\nstatus = {status}\nbody = \"\""
        ))
        .is_ok());
    }
    assert!(parse("[default_response]\nstatus = 200\nbody_file = \"/x\"").is_ok());
}

#[test]
fn a_route_that_can_never_match_is_refused_naming_both() {
    let e = parse("[[route]]\npath = \"/a\"\n[[route]]\nprefix = \"/b\"\n[[route]]\npath = \"/a\"")
        .unwrap_err();
    assert_eq!(
        e,
        "route #3 (path = \"/a\") can never match: route #1 (path = \"/a\") comes first and \
         matches the same requests"
    );
    let e = parse("[[route]]\nprefix = \"/p\"\n[[route]]\nmethod = \"PUT\"\nprefix = \"/p\"")
        .unwrap_err();
    assert!(e.starts_with("route #2 (PUT prefix = \"/p\")"), "{e}");
    let e = parse(
        "[[route]]\nmethod = \"GET\"\npath = \"/g\"\n[[route]]\nmethod = \"HEAD\"\npath = \"/g\"",
    )
    .unwrap_err();
    assert!(
        e.starts_with("route #2 (HEAD path = \"/g\") can never match"),
        "{e}"
    );
    assert!(parse(
        "[[route]]\nmethod = \"HEAD\"\npath = \"/g\"\n[[route]]\nmethod = \"GET\"\npath = \"/g\""
    )
    .is_ok());
    // Different methods, or a path beside a prefix, each match something of their own.
    assert!(parse(
        "[[route]]\nmethod = \"GET\"\npath = \"/a\"\n[[route]]\nmethod = \"POST\"\npath = \"/a\"\n\
         [[route]]\nprefix = \"/a\"\n[[route]]\npath = \"/a\""
    )
    .is_ok());
}

#[test]
fn the_access_log_is_off_a_stream_or_an_absolute_path() {
    assert_eq!(Config::default().access_log, AccessLog::Off);
    let c = parse("access_log = \"/var/log/cerberus/access.log\"\naccess_log_format = \"json\"")
        .unwrap();
    assert_eq!(
        c.access_log,
        AccessLog::File("/var/log/cerberus/access.log".into())
    );
    assert_eq!(c.access_log_format, AccessLogFormat::Json);
    assert_eq!(
        parse("access_log = \"stderr\"").unwrap().access_log,
        AccessLog::Stderr
    );
    let e = parse("access_log = \"logs/access.log\"").unwrap_err();
    assert!(e.contains("absolute path"), "{e}");
    let e = parse("access_log_buffer = 10").unwrap_err();
    assert!(e.contains("access_log_buffer"), "{e}");
    assert!(parse("access_log_format = \"common\"").is_err());
}

#[test]
fn rates_are_read_with_their_units_and_bad_ones_are_named() {
    use crate::config::Rate;
    assert_eq!("1KiB/s".parse::<Rate>(), Ok(Rate(1024)));
    assert_eq!("512B/s".parse::<Rate>(), Ok(Rate(512)));
    assert_eq!("2MiB/s".parse::<Rate>(), Ok(Rate(2 << 20)));
    assert_eq!("off".parse::<Rate>(), Ok(Rate(0)));
    for bad in [
        "1KiB",
        "1 KiB/s",
        "KiB/s",
        "1kb/s",
        "-1B/s",
        "99999999999999999999MiB/s",
    ] {
        assert!(bad.parse::<Rate>().is_err(), "{bad}");
    }
    let e = parse("min_body_rate = \"fast\"").unwrap_err();
    assert!(e.contains("min_body_rate") && e.contains("fast"), "{e}");
}

#[test]
fn shape_routes_are_checked_when_the_config_is() {
    let shape = |table: &str| {
        parse(&format!(
            "[[route]]\nprefix = \"/s\"\nhandler = \"shape\"\n[route.shape]\n{table}"
        ))
    };
    let ok =
        shape("delay = \"p50:5ms,p99:80ms\"\nmax_delay = \"1h\"\nheader = [\"X-A:1\"]").unwrap();
    let route = &ok.routes[0];
    assert_eq!(route.shape.as_ref().unwrap().max_delay, MAX_SHAPE_DELAY);
    for (table, says) in [
        ("max_delay = \"2h\"", "max_delay"),
        ("delay = \"11s\"", "shape.delay"),
        ("status = \"503:60,500:60\"", "shape.status"),
        ("header = [\"Content-Length:1\"]", "shape.header"),
        ("drip = \"0x1ms\"", "shape.drip"),
        ("size = \"1MiB\"\nmax_size = 1000", "shape.size"),
    ] {
        let e = shape(table).unwrap_err();
        assert!(e.contains(says), "{table}: {e}");
    }
    let e = parse("[[route]]\npath = \"/x\"\nbody = \"hi\"\n[route.shape]\ndelay = \"1ms\"")
        .unwrap_err();
    assert!(e.contains("[route.shape]"), "{e}");
    let e = parse("[[route]]\npath = \"/x\"\nhandler = \"shape\"\nbody = \"hi\"").unwrap_err();
    assert!(e.contains("shape.size"), "{e}");
    let e = parse("max_pending = 0").unwrap_err();
    assert!(e.contains("max_pending"), "{e}");
}
