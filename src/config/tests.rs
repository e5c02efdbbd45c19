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
