#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: a measure that does not drift with the
machine's load, for comparing two builds of the request path.

The server runs under `valgrind --tool=callgrind` with one worker. Each scenario is run twice,
with N and 2N requests; the difference in user-space instructions divided by N is the cost
of one request, with start-up and shutdown cancelled out. Kernel time (system calls) is not
counted: use compare.py or load.py for CPU time.

    cargo build --release
    python3 benches/instructions.py                       # target/release/cerberus
    python3 benches/instructions.py --bin OLD --bin NEW   # side by side
    python3 benches/instructions.py --config on.toml      # with a config file (e.g. access log on)

Scenarios:
    get        GET / on one keep-alive connection, one request per write
    pieces16   a 520-byte browser-like GET head sent in 16-byte pieces (each piece its own
               read), one request at a time
    post-json  POST / with a 921-byte JSON body, validated
    pipe16     16 pipelined GET / per write
    close      GET / with `Connection: close`, a new connection per request
    shape503   GET /s?status=503:50 on a `shape` route (half 503, half 200), one per write
    shape      GET /s on a `shape` route with no arguments (the route's default: 200, empty)
    getq       GET /?status=503:50 answered by the static default: a plain get with the same
               request line length as shape503
The shape scenarios add a `shape` route at /s to the config (or to --config's).
Needs valgrind (apt-get install valgrind).
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

BROWSER_HEAD = (
    b"GET /index.html?utm=1 HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; lang=en\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"\r\n"
)


def json_body():
    items = ",".join(
        '{"id":%d,"name":"item-%d","price":%d.5,"tags":["a","b"],"ok":true}' % (i, i, i)
        for i in range(13)
    )
    return ('{"order":{"items":[%s],"note":"x"}}' % items).encode()


def post_json():
    body = json_body()
    return (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body


def read_responses(sock, count, buf):
    """Read until `count` responses (each ends its head with CRLFCRLF and has a small body)."""
    seen = 0
    while seen < count:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("server closed the connection")
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            m = re.search(rb"Content-Length: (\d+)", buf[:end], re.I)
            length = int(m.group(1)) if m else 0
            if len(buf) < end + 4 + length:
                break
            buf = buf[end + 4 + length:]
            seen += 1
    return buf


def drive(port, scenario, n):
    if scenario == "close":
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while sock.recv(65536):
                    pass
        return
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    if scenario == "get":
        for _ in range(n):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            buf = read_responses(sock, 1, buf)
    elif scenario == "pieces16":
        for _ in range(n):
            for i in range(0, len(BROWSER_HEAD), 16):
                sock.sendall(BROWSER_HEAD[i:i + 16])
                # Let each piece arrive on its own, as a slow client's would.
                time.sleep(0.0005)
            buf = read_responses(sock, 1, buf)
    elif scenario == "post-json":
        req = post_json()
        for _ in range(n):
            sock.sendall(req)
            buf = read_responses(sock, 1, buf)
    elif scenario in ("shape503", "shape", "getq"):
        target = {"shape503": b"/s?status=503:50", "shape": b"/s", "getq": b"/?status=503:50"}[scenario]
        for _ in range(n):
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            buf = read_responses(sock, 1, buf)
    elif scenario == "pipe16":
        batch = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 16
        for _ in range(n // 16):
            sock.sendall(batch)
            buf = read_responses(sock, 16, buf)
    sock.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


SHAPE_ROUTE = '\n[[route]]\nprefix = "/s"\nhandler = "shape"\n'


def instructions(binary, scenario, n, config=None):
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        if scenario.startswith("shape"):
            text = open(config).read() if config else ""
            config = os.path.join(tmp, "shape.toml")
            with open(config, "w") as f:
                f.write(text + SHAPE_ROUTE)
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
             binary, "--workers", "1", "--metrics-listen", "off",
             "--listen", "127.0.0.1:%d" % port]
            + (["--config", config] if config else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            drive(port, scenario, n)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
    raise RuntimeError("no totals in callgrind output")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", help="server binary (repeat to compare)")
    ap.add_argument("--scenarios", default="get,pieces16,post-json,pipe16,close")
    ap.add_argument("-n", type=int, default=400, help="requests in the smaller run")
    ap.add_argument("--config", help="config file every binary runs with (the flags above win)")
    args = ap.parse_args()
    bins = args.bin or ["target/release/cerberus"]
    print("%-10s %s" % ("scenario", "  ".join("%22s" % os.path.basename(b)[-22:] for b in bins)))
    for scenario in args.scenarios.split(","):
        row = []
        for b in bins:
            # The connection (the listen socket's first accept) is in both runs: it cancels out.
            a = instructions(b, scenario, args.n, args.config)
            c = instructions(b, scenario, 2 * args.n, args.config)
            row.append((c - a) / args.n)
        print("%-10s %s" % (scenario, "  ".join("%16.0f instr" % r for r in row)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
