//! The llhttp request corpus (`tests/data/llhttp-requests.json`), run through the shared
//! driver (`tests/common/driver.rs`) that does what a server does with a connection's bytes: parse a head, read the body
//! (by `Content-Length` or chunked), then either stop (not keep-alive) or parse the next
//! pipelined request.
//!
//! Every case runs whole, and again split at every byte: the prefix is fed first, then the whole.
//! The verdict and every completed message must match llhttp's, except for the named
//! [`DEVIATIONS`], where Cerberus is deliberately stricter.

use cerberus::http::Version;
use serde_json::Value;

/// The llhttp corpus (a copy of the team's shared conformance file; see tests/data/README.md).
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/llhttp-requests.json"
);

/// Cases where we knowingly differ from llhttp, and why. Each may only make us stricter.
const DEVIATIONS: &[(&str, &str)] = &[
    (
        "transfer-encoding:/ POST with `chunked` as last transfer-encoding",
        "we decode no coding but chunked, so `deflate, chunked` is 501 (the target's `#` also is 400)",
    ),
    (
        "method:/  / ANNOUNCE request with RTSP",
        "RTSP is not HTTP: ANNOUNCE is no HTTP method and RTSP/1.0 no HTTP version",
    ),
    (
        "method:/  / OPTIONS request with RTSP",
        "RTSP/1.0 is not an HTTP version; we serve HTTP only",
    ),
    (
        "sample:/ No HTTP version",
        "HTTP/0.9 requests (no version) are not served",
    ),
    (
        "uri:/ `host:port` and basic auth",
        "userinfo in an http URI is rejected (RFC 9110 §4.2.4: a sender MUST NOT generate it; \
         `http://user@host` is a known way to make a URI look like it names another host)",
    ),
    (
        "content-length:/ Content-Length reset when no body is received",
        "llhttp's test skipped the body via a callback; a server must wait for the 123 body bytes",
    ),
];

#[path = "common/driver.rs"]
mod driver;

use driver::{Config, Failure};

/// A server's reading: stop after a message that is not keep-alive, and a body limit bigger
/// than anything in the corpus.
const CONFIG: Config = Config {
    max_body: 1 << 20,
    honour_close: true,
};

/// One completed request, in the corpus's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    method: String,
    url: String,
    version: String,
    headers: Vec<(String, String)>,
    body: String,
    trailers: Vec<(String, String)>,
}

impl Message {
    /// What llhttp would have reported for a message the driver completed.
    fn of(m: &driver::Message) -> Message {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let pairs = |p: &[(Vec<u8>, Vec<u8>)]| p.iter().map(|(n, v)| (text(n), text(v))).collect();
        Message {
            method: m.method.clone(),
            url: m.target.clone(),
            version: match m.version {
                Version::Http10 => "1.0",
                Version::Http11 => "1.1",
            }
            .to_string(),
            headers: pairs(&m.fields),
            body: text(&m.body),
            trailers: pairs(&m.trailers),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    Reject,
    Incomplete,
}

/// The outcome of running bytes through a fresh driver: verdict, completed messages, and the
/// error if any.
type Outcome = (Verdict, Vec<Message>, Option<Failure>);

/// Run `input` (first its prefix up to `split`, if given) and judge it as llhttp does.
fn run(input: &[u8], split: Option<usize>) -> Outcome {
    let outcome = driver::run(input, split.as_slice(), CONFIG);
    let verdict = if outcome.error.is_some() {
        Verdict::Reject
    } else if outcome.open.is_none() && outcome.used == input.len() {
        // Between messages, or after the one that closed the connection.
        Verdict::Accept
    } else {
        Verdict::Incomplete
    };
    let messages = outcome.messages.iter().map(Message::of).collect();
    (verdict, messages, outcome.error)
}

struct Case {
    id: String,
    raw: Vec<u8>,
    verdict: Verdict,
    messages: Vec<Message>,
}

fn load() -> Vec<Case> {
    let text = std::fs::read_to_string(CORPUS).expect("read the llhttp corpus");
    let json: Value = serde_json::from_str(&text).expect("corpus is JSON");
    json.as_array()
        .expect("corpus is an array")
        .iter()
        .map(|c| Case {
            id: c["id"].as_str().unwrap().to_string(),
            raw: hex(c["raw_hex"].as_str().unwrap()),
            verdict: match c["verdict"].as_str().unwrap() {
                "accept" => Verdict::Accept,
                "reject" => Verdict::Reject,
                "incomplete" => Verdict::Incomplete,
                other => panic!("unknown verdict {other}"),
            },
            messages: c["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(message)
                .collect(),
        })
        .collect()
}

fn message(m: &Value) -> Message {
    let s = |k: &str| m[k].as_str().unwrap().to_string();
    let pairs = |k: &str| {
        m[k].as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
            .collect()
    };
    Message {
        method: s("method"),
        url: s("url"),
        version: s("version"),
        headers: pairs("headers"),
        body: s("body"),
        trailers: pairs("trailers"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Check one case whole and at every split; returns a description of each mismatch.
fn check(case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let whole = run(&case.raw, None);
    for at in 0..=case.raw.len() {
        let split = run(&case.raw, Some(at));
        if split != whole {
            problems.push(format!("split at {at}: {split:?}, whole: {whole:?}"));
            break;
        }
    }
    let deviation = DEVIATIONS.iter().find(|(id, _)| *id == case.id);
    let (verdict, messages, failure) = &whole;
    match deviation {
        None => {
            if *verdict != case.verdict {
                problems.push(format!(
                    "verdict {verdict:?} ({failure:?}), llhttp {:?}",
                    case.verdict
                ));
            }
            if *messages != case.messages {
                problems.push(format!(
                    "messages {messages:#?}\nllhttp {:#?}",
                    case.messages
                ));
            }
        }
        Some((_, reason)) => {
            // Stricter only: never accept what llhttp does not, and complete no message that
            // llhttp would not. A deviation that no longer deviates should leave the list.
            let stricter = *verdict != Verdict::Accept
                && (case.verdict != Verdict::Reject || *verdict == Verdict::Reject)
                && case.messages.starts_with(messages);
            if !stricter || *verdict == case.verdict && *messages == case.messages {
                problems.push(format!(
                    "deviation ({reason}) is not strictly stricter: ours {verdict:?} \
                     {messages:?}, llhttp {:?} {:?}",
                    case.verdict, case.messages
                ));
            }
        }
    }
    problems
}

#[test]
fn llhttp_corpus_matches_whole_and_at_every_split() {
    let cases = load();
    assert_eq!(cases.len(), 84, "the corpus has 84 cases");
    let mut failures = Vec::new();
    for case in &cases {
        for p in check(case) {
            failures.push(format!("{}: {p}", case.id));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_deviation_names_a_case_in_the_corpus() {
    let cases = load();
    for (id, reason) in DEVIATIONS {
        assert!(!reason.is_empty());
        assert!(
            cases.iter().any(|c| c.id == *id),
            "deviation {id:?} matches no case"
        );
    }
}

#[test]
fn driver_rejects_data_after_close_and_pipelines_keep_alive() {
    let close = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    let (verdict, messages, failure) = run(close, None);
    assert_eq!(verdict, Verdict::Reject);
    assert_eq!(messages.len(), 1);
    assert_eq!(failure, Some(Failure::DataAfterClose));

    let pipelined = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    let (verdict, messages, _) = run(pipelined, Some(7));
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].body, "abc");
    assert_eq!(messages[0].trailers, vec![("T".into(), "1".into())]);
    assert_eq!(messages[1].url, "/b");
}

/// The copy in tests/data must not drift from the team's shared corpus, where that is present
/// (it is beside the repository in development and CI, not for users).
#[test]
fn the_copy_matches_the_shared_corpus() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/llhttp-requests.json"
    );
    if let Ok(theirs) = std::fs::read(shared) {
        assert!(
            theirs == std::fs::read(CORPUS).unwrap(),
            "tests/data/llhttp-requests.json is stale"
        );
    }
}
