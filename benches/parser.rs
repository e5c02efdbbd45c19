//! Request-head parsing throughput: Cerberus against httparse on the same bytes.
//!
//! Each group parses one kind of input with both parsers, so criterion prints them side by side.
//! Both reuse their state between iterations, as a server worker would: one `RequestParser`,
//! one header array. `resume` compares the two ways to handle a head that arrives in pieces.
//!
//! Run: `cargo bench --bench parser -- --warm-up-time 1 --measurement-time 3`

use cerberus::http::{RequestParser, Status};
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput,
};

/// A minimal HTTP/1.1 GET: request line and `Host`.
const GET_MIN: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nAccept: */*\r\n\r\n";

/// What a desktop browser sends for a page: about 700 bytes in 12 fields.
const GET_BROWSER: &[u8] = b"GET /articles/2024/rust-http-parsing?utm_source=newsletter&page=2 HTTP/1.1\r\n\
Host: www.example-news-site.com\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0\r\n\
sec-ch-ua: \"Chromium\";v=\"122\", \"Not(A:Brand\";v=\"24\", \"Google Chrome\";v=\"122\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n\
Cookie: session=3f9a1c2b7d8e4f60a1b2c3d4e5f60718; theme=dark; _ga=GA1.2.123456789.1700000000\r\n\r\n";

/// The head of a JSON API call; the body would follow.
const POST_JSON_HEAD: &[u8] = b"POST /api/v1/orders HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: example-client/2.3.1\r\n\
Accept: application/json\r\n\
Content-Type: application/json\r\n\
Content-Length: 348\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl\r\n\r\n";

/// Bytes a browser head arrives in, per read, in the `resume` group.
const STEP: usize = 16;

fn cerberus_all(p: &mut RequestParser, mut buf: &[u8]) -> usize {
    let mut heads = 0;
    while !buf.is_empty() {
        match p.parse(buf) {
            Status::Complete(head, n) => {
                black_box(head.field_count());
                buf = &buf[n..];
                heads += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    heads
}

fn httparse_all<'b>(headers: &mut [httparse::Header<'b>], mut buf: &'b [u8]) -> usize {
    let mut heads = 0;
    while !buf.is_empty() {
        let mut req = httparse::Request::new(&mut *headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                black_box(req.headers.len());
                buf = &buf[n..];
                heads += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    heads
}

fn side_by_side(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, input: &[u8]) {
    group.throughput(Throughput::Bytes(input.len() as u64));
    let mut parser = RequestParser::new();
    group.bench_function("cerberus", |b| {
        b.iter(|| cerberus_all(&mut parser, black_box(input)))
    });
    let mut headers = [httparse::EMPTY_HEADER; 100];
    group.bench_function("httparse", |b| {
        b.iter(|| httparse_all(&mut headers, black_box(input)))
    });
}

fn heads(c: &mut Criterion) {
    let pipeline16 = GET_MIN.repeat(16);
    let cases: [(&str, &[u8]); 4] = [
        ("get_min", GET_MIN),
        ("get_browser", GET_BROWSER),
        ("post_json_head", POST_JSON_HEAD),
        ("pipeline16", &pipeline16),
    ];
    for (name, input) in cases {
        side_by_side(&mut c.benchmark_group(name), input);
    }
}

/// A head that arrives `STEP` bytes at a time: resume where the last call stopped, or parse
/// the whole prefix again from scratch each time (what httparse has to do).
fn resume(c: &mut Criterion) {
    let input = GET_BROWSER;
    let ends: Vec<usize> = (STEP..input.len())
        .step_by(STEP)
        .chain([input.len()])
        .collect();
    let mut group = c.benchmark_group("resume");
    group.throughput(Throughput::Bytes(input.len() as u64));
    let mut parser = RequestParser::new();
    group.bench_function("cerberus_resumed", |b| {
        b.iter(|| {
            let mut done = 0;
            for &end in &ends {
                if let Status::Complete(_, n) = parser.parse(black_box(&input[..end])) {
                    done = n;
                }
            }
            assert_eq!(done, input.len());
        })
    });
    group.bench_function("cerberus_rescan", |b| {
        b.iter(|| {
            let mut done = 0;
            for &end in &ends {
                let mut fresh = RequestParser::new();
                if let Status::Complete(_, n) = fresh.parse(black_box(&input[..end])) {
                    done = n;
                }
            }
            assert_eq!(done, input.len());
        })
    });
    let mut headers = [httparse::EMPTY_HEADER; 100];
    group.bench_function("httparse_rescan", |b| {
        b.iter(|| {
            let mut done = 0;
            for &end in &ends {
                let mut req = httparse::Request::new(&mut headers);
                if let Ok(httparse::Status::Complete(n)) = req.parse(black_box(&input[..end])) {
                    done = n;
                }
            }
            assert_eq!(done, input.len());
        })
    });
    group.finish();
}

criterion_group!(benches, heads, resume);
criterion_main!(benches);
