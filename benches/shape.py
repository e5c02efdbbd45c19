#!/usr/bin/env python3
"""The load-test target's figures, side by side with nginx's echo module
(`libnginx-mod-http-echo`: echo_sleep, echo_status, echo_duplicate), in one run, servers taking
turns. Each server runs one worker pinned to CPU 1, the clients on CPU 0.

    cargo build --release --example shape_load && cargo build --release
    cargo build --release --example body_sink
    python3 benches/shape.py [--scenarios delay,delayrt,capacity,size,sizesink,drip,dist] [--rounds 2]

Scenarios:
  delay     1,000 connections at 10,000 requests/s in all, each request delayed 5 ms
            (`/s?delay=5ms`; nginx `echo_sleep 0.005`): lateness, the response's completion
            minus its request's send minus 5 ms, as the client (examples/shape_load.rs) saw it;
            and the same load with no delay, the round trip no timer can remove (floor);
            then both again with the precise client (precise_*: it polls instead of
            sleeping, so its sends keep their pace, and takes arrival from the kernel's
            receive timestamp, so its own wake-ups and stalls are not counted)
  delayrt   the delay load and the precise client, each server under `chrt -f 10`
            (SCHED_FIFO), so that no ordinary thread, a kernel thread included, preempts it
  capacity  10,000 connections idle, then each holding one request delayed by 2 s: RSS per
            pending request above the same connections idle; responses and errors
  size      1 MiB bodies (`/s?size=1MiB`; nginx `echo_duplicate`), wrk with 16 connections:
            rps, and server CPU per MiB sent
  sizefile  the same, Cerberus sending the bodies by sendfile from a memory file
            (`[route.shape] sendfile = true`) instead of writev
  sizesink, sizefilesink
            size and sizefile with a client that drops the bodies unread
            (examples/body_sink.rs, `recv(MSG_TRUNC)`): wrk's own copy of each byte costs its
            core about what the server's costs, so only this measures the server's
            throughput on one core
  drip      1,000 connections, each response 10 pieces 100 ms apart (`/s?drip=10x100ms`;
            nginx echo + echo_flush + echo_sleep 0.1): the gap between pieces minus 100 ms
  dist      100,000 requests over 20 connections, each with its own seed, of
            `status=503:20,429:5&delay=p50:5ms,p99:80ms`: the status percentages and the
            delays' p50 and p99 (from X-Cerberus-Shape) against what was asked (Cerberus only)
Needs nginx, libnginx-mod-http-echo and wrk (apt-get, when missing and root).
"""
import argparse, json, os, re, resource, selectors, shutil, signal, socket, statistics
import subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "bench")
sys.path.insert(0, SHARED)
import compare  # noqa: E402  (free_port, cpu_seconds, rss_bytes, Server)

CERBERUS_CONF = """workers = 1
max_connections = 16384
keepalive_timeout = "60s"
[[route]]
prefix = "/s"
handler = "shape"
[[route]]
prefix = "/f"
handler = "shape"
[route.shape]
sendfile = true
"""

LINE64 = "cerberus shaped body 0123456789 abcdefghijklmnopqrstuvwxyz ....."
DRIP = "".join("echo a; echo_flush; echo_sleep 0.1; " for _ in range(9)) + "echo a;"

NGINX_CONF = """load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 65536; use epoll; multi_accept on; }}
worker_rlimit_nofile 20000;
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    default_type text/plain;
    location /delay0 {{ echo ok; }}
    location /delay5 {{ echo_sleep 0.005; echo ok; }}
    location /delay2s {{ echo_sleep 2; echo ok; }}
    location /size1m {{ echo_duplicate 16384 "{line}"; }}
    location /drip {{ {drip} }}
    location /status503 {{ echo_status 503; echo ok; }}
  }}
}}
"""

# Each scenario's path on each server.
PATHS = {
    "delay": {"cerberus": "/s?delay=5ms", "nginx": "/delay5"},
    "floor": {"cerberus": "/s?delay=0ms", "nginx": "/delay0"},
    "capacity": {"cerberus": "/s?delay=2s", "nginx": "/delay2s"},
    "size": {"cerberus": "/s?size=1MiB", "nginx": "/size1m"},
    "sizefile": {"cerberus": "/f?size=1MiB", "nginx": "/size1m"},
    "sizesink": {"cerberus": "/s?size=1MiB", "nginx": "/size1m"},
    "sizefilesink": {"cerberus": "/f?size=1MiB", "nginx": "/size1m"},
    "drip": {"cerberus": "/s?drip=10x100ms&size=20", "nginx": "/drip"},
}


def start(name, tmp, realtime=False):
    port = compare.free_port()
    if name == "cerberus":
        conf = os.path.join(tmp, "cerberus.toml")
        with open(conf, "w") as f:
            f.write(CERBERUS_CONF)
        argv = [os.path.join(ROOT, "target/release/cerberus"), "--config", conf,
                "--listen", f"127.0.0.1:{port}", "--metrics-listen", "off"]
    else:
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, line=LINE64, drip=DRIP))
        argv = ["nginx", "-c", conf, "-p", tmp]
    if realtime:
        argv = ["chrt", "-f", "10"] + argv
    return compare.Server(name, argv, port, 1)


def shape_load(mode, server, path, conns, rate, secs, expect_us, precise=False):
    exe = os.path.join(ROOT, "target/release/examples/shape_load")
    flag = "1" if precise else "0"
    env = dict(os.environ, SHAPE_POLL=flag, SHAPE_RXSTAMP=flag)
    out = subprocess.run(["taskset", "-c", "0", exe, mode, f"127.0.0.1:{server.port}", path,
                          str(conns), str(rate), str(secs), str(expect_us)],
                         capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out)


def capacity(server, path, n=10000):
    """RSS per pending request above the same connections idle."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", server.port))
        socks.append(s)
    time.sleep(1.0)
    idle = compare.rss_bytes(server.proc.pid)
    req = f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode()
    sent = time.time()
    for s in socks:
        s.sendall(req)
    time.sleep(1.0)
    pending = compare.rss_bytes(server.proc.pid)
    answered, errors = 0, 0
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
    deadline = time.time() + 20
    while answered + errors < n and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            buf = key.data
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:
                errors += 1
                sel.unregister(key.fileobj)
                continue
            buf += data
            if re.search(rb"\r\n0\r\n\r\n$|Content-Length: 0\r\n.*\r\n\r\n$", bytes(buf), re.S) \
                    or (b"\r\n\r\n" in buf and b"Content-Length" in buf and buf.endswith(b"\r\n\r\n")):
                answered += 1
                sel.unregister(key.fileobj)
    took = time.time() - sent
    for s in socks:
        s.close()
    return {"idle_rss_mib": idle / 2**20, "pending_rss_mib": pending / 2**20,
            "bytes_per_pending": (pending - idle) / n, "answered": answered,
            "errors": n - answered, "seconds": round(took, 2)}


def size(server, path, secs=5):
    before = compare.cpu_seconds(server.proc.pid)
    out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", "-c16", f"-d{secs}s",
                          f"http://127.0.0.1:{server.port}{path}"],
                         capture_output=True, text=True).stdout
    used = compare.cpu_seconds(server.proc.pid) - before
    reqs = int(next((l.split()[0] for l in out.splitlines() if "requests in" in l), 0))
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"rps": reqs / secs, "cpu_ms_per_mib": used * 1e3 / reqs if reqs else None,
            "errors": errors}


def sink(server, path, secs=5, conns=16):
    """The same bodies to a client that drops them unread (`recv(MSG_TRUNC)`), so the server's
    core, not the client's copy, sets the rate."""
    exe = os.path.join(ROOT, "target/release/examples/body_sink")
    before = compare.cpu_seconds(server.proc.pid)
    out = subprocess.run(["taskset", "-c", "0", exe, f"127.0.0.1:{server.port}", path,
                          str(conns), str(secs)],
                         capture_output=True, text=True, check=True).stdout
    used = compare.cpu_seconds(server.proc.pid) - before
    got = json.loads(out)
    n = got["responses"]
    got["cpu_ms_per_mib"] = used * 1e3 / n if n else None
    got["server_cpu_share"] = round(used / got["seconds"], 3)
    return got


def dist(server, total=100000, conns=20, depth=100):
    query = "status=503:20,429:5&delay=p50:5ms,p99:80ms"
    statuses, delays = {}, []
    lock = threading.Lock()

    def one(i):
        s = socket.create_connection(("127.0.0.1", server.port))
        req = f"GET /s?seed={1000 + i}&{query} HTTP/1.1\r\nHost: b\r\n\r\n".encode()
        buf = b""
        mine_s, mine_d = {}, []
        for _ in range(total // conns // depth):
            s.sendall(req * depth)
            got = 0
            while got < depth:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    buf += s.recv(1 << 16)
                    continue
                head = buf[:end].decode()
                status = int(head.split(" ", 2)[1])
                mine_s[status] = mine_s.get(status, 0) + 1
                mine_d.append(int(re.search(r"delay=(\d+)us", head).group(1)))
                buf = buf[end + 4:]
                got += 1
        s.close()
        with lock:
            for k, v in mine_s.items():
                statuses[k] = statuses.get(k, 0) + v
            delays.extend(mine_d)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = sum(statuses.values())
    delays.sort()
    p = lambda q: delays[int(q * (len(delays) - 1))] / 1000
    return {"requests": n,
            "percent": {k: round(100 * v / n, 2) for k, v in sorted(statuses.items())},
            "delay_p50_ms": p(0.5), "delay_p99_ms": p(0.99),
            "p50_error_pct": round(100 * (p(0.5) - 5) / 5, 2),
            "p99_error_pct": round(100 * (p(0.99) - 80) / 80, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios",
                    default="delay,delayrt,capacity,size,sizefile,sizesink,sizefilesink,drip,dist")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    compare.need("wrk", "wrk")
    compare.need("nginx", "nginx")
    if not os.path.exists("/usr/lib/nginx/modules/ngx_http_echo_module.so"):
        compare.need("no-such-tool-echo", "libnginx-mod-http-echo")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenarios.split(","):
            names = ["cerberus"] if scenario == "dist" else ["cerberus", "nginx"]
            for r in range(args.rounds if scenario not in ("capacity", "dist") else 1):
                for name in names:
                    server = start(name, tmp, realtime=scenario == "delayrt")
                    try:
                        if scenario == "delayrt":
                            got = shape_load("delay", server, PATHS["delay"][name],
                                             1000, 10000, 10, 5000, precise=True)
                        elif scenario == "delay":
                            got = shape_load("delay", server, PATHS["delay"][name],
                                             1000, 10000, 10, 5000)
                            # The same load with no delay: the round trip the lateness
                            # includes, which no timer can remove.
                            floor = shape_load("delay", server, PATHS["floor"][name],
                                               1000, 10000, 5, 0)
                            got["floor_p50_us"] = floor["p50_us"]
                            got["floor_p99_us"] = floor["p99_us"]
                            # Both again with the precise client, whose own scheduling is
                            # not in the figure.
                            precise = shape_load("delay", server, PATHS["delay"][name],
                                                 1000, 10000, 10, 5000, precise=True)
                            floor = shape_load("delay", server, PATHS["floor"][name],
                                               1000, 10000, 5, 0, precise=True)
                            for k in ("early", "p50_us", "p90_us", "p99_us", "max_us"):
                                got["precise_" + k] = precise[k]
                            got["precise_floor_p50_us"] = floor["p50_us"]
                            got["precise_floor_p99_us"] = floor["p99_us"]
                        elif scenario == "drip":
                            got = shape_load("drip", server, PATHS["drip"][name],
                                             1000, 1000, 10, 100000)
                        elif scenario == "capacity":
                            got = capacity(server, PATHS["capacity"][name])
                        elif scenario in ("size", "sizefile"):
                            got = size(server, PATHS[scenario][name])
                        elif scenario in ("sizesink", "sizefilesink"):
                            got = sink(server, PATHS[scenario][name])
                        else:
                            got = dist(server)
                    finally:
                        server.stop()
                    results.setdefault(scenario, {}).setdefault(name, []).append(got)
                    print(scenario, name, json.dumps(got), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
