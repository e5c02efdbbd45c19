#!/usr/bin/env python3
"""How evenly connections and load spread over the workers: balance = "hash" (the kernel's
SO_REUSEPORT hash alone) against balance = "load" (hand-off to the least loaded worker),
taking turns trial by trial in one run.

    cargo build --release
    python3 benches/balance.py [--workers 16] [--trials 20] [--bin target/release/cerberus]

Reports, for each mode:
- count:   N keep-alive connections opened at once (from 8 threads), per-worker open
           connections from /metrics: the busiest worker over the mean (median and worst of
           the trials), and how many workers held none;
- rate:    64 connections, half of them 10x busier than the others, for a few seconds:
           per-worker requests/s (cerberus_worker_requests_total) as max/mean;
- latency: connect-to-first-response of new connections while 16 workers already hold
           uneven keep-alive connections (so "load" hands many on): p50/p99, and the share
           handed on.
Sends traffic to 127.0.0.1 only; every phase is bounded in count and time.
"""
import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REQ = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def read_response(sock, buf=b""):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest[length:]


class Server:
    """`mode` "hash" or "load" is the balance setting; "shared" is the alternative judged
    against them: every worker accepts from one listening socket (passed as systemd's socket
    activation does), so whichever worker is free takes the next connection, and nothing is
    handed on."""

    def __init__(self, binary, workers, mode):
        self.port, self.mport = free_port(), free_port()
        self.tmp = tempfile.TemporaryDirectory()
        config = os.path.join(self.tmp.name, "c.toml")
        with open(config, "w") as f:
            f.write('balance = "%s"\n' % ("hash" if mode == "shared" else mode))
        args = [binary, "--config", config, "--workers", str(workers),
                "--listen", "127.0.0.1:%d" % self.port,
                "--metrics-listen", "127.0.0.1:%d" % self.mport]
        extra = {}
        if mode == "shared":
            self.listener = socket.socket()
            self.listener.bind(("127.0.0.1", self.port))
            self.listener.listen(4096)
            fd = self.listener.fileno()

            def as_socket_activation():
                os.dup2(fd, 3)
                os.environ["LISTEN_FDS"] = "1"
                os.environ["LISTEN_PID"] = str(os.getpid())
            extra = dict(pass_fds=(fd,), preexec_fn=as_socket_activation)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **extra)
        wait_port(self.port)
        wait_port(self.mport)

    def metric(self, name):
        with socket.create_connection(("127.0.0.1", self.mport)) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        values = {}
        for m in re.finditer(r'^%s\{worker="(\d+)"\} (\S+)$' % name, data.decode(), re.M):
            values[int(m.group(1))] = float(m.group(2))
        return [values[k] for k in sorted(values)]

    def wait_open(self, n, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            counts = self.metric("cerberus_connections_open")
            if sum(counts) == n:
                return counts
            time.sleep(0.02)
        raise RuntimeError("never %d open" % n)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


def open_conns(port, n):
    out, lock = [], threading.Lock()

    def opener(t):
        mine = []
        for i in range(t, n, 8):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(REQ)
            read_response(s)
            mine.append(s)
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=opener, args=(t,)) for t in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return out


def skew(counts):
    mean = sum(counts) / len(counts)
    return max(counts) / mean if mean else 0.0


def count_trials(servers, n, trials):
    results = {mode: [] for mode in servers}
    for _ in range(trials):
        for mode, server in servers.items():
            conns = open_conns(server.port, n)
            counts = server.wait_open(n)
            results[mode].append((skew(counts), sum(1 for c in counts if c == 0)))
            for s in conns:
                s.close()
            server.wait_open(0)
    for mode, rows in results.items():
        ratios = [r for r, _ in rows]
        idle = [i for _, i in rows]
        print("count  %-5s %5d conns: max/mean median %.2f worst %.2f; idle workers median %d worst %d"
              % (mode, n, statistics.median(ratios), max(ratios), statistics.median(idle), max(idle)),
              flush=True)


def rate_trial(server, seconds, busy_gap, slow_gap, warmup=2.0):
    """64 connections opened at once; the even ones send a request every busy_gap seconds,
    the odd ones every slow_gap. Rates are taken after `warmup` seconds (moves between
    workers happen every 200 ms)."""
    conns = open_conns(server.port, 64)
    stop = time.time() + warmup + seconds
    marks = []
    mark = lambda: marks.append((time.time(), server.metric("cerberus_worker_requests_total")))
    threading.Timer(warmup, mark).start()

    def client(i, s):
        gap = busy_gap if i % 2 == 0 else slow_gap
        buf = b""
        while time.time() < stop:
            s.sendall(REQ)
            buf = read_response(s, buf)
            time.sleep(gap)

    threads = [threading.Thread(target=client, args=(i, s)) for i, s in enumerate(conns)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    after = server.metric("cerberus_worker_requests_total")
    start, before = marks[0]
    took = time.time() - start
    rates = [(a - b) / took for a, b in zip(after, before)]
    for s in conns:
        s.close()
    server.wait_open(0)
    return skew(rates), sum(rates)


def latency_trial(server, held, probes):
    """Hold `held` keep-alive connections, then time `probes` new connections from connect to
    first response (each kept open, so shares keep moving)."""
    before = sum(server.metric("cerberus_connections_handed_off_total"))
    conns = open_conns(server.port, held)
    times = []
    for _ in range(probes):
        t0 = time.perf_counter()
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(REQ)
        read_response(s)
        times.append(time.perf_counter() - t0)
        conns.append(s)
    handed = sum(server.metric("cerberus_connections_handed_off_total")) - before
    for s in conns:
        s.close()
    server.wait_open(0)
    return times, handed / (held + probes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/cerberus")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--rate-seconds", type=float, default=4)
    ap.add_argument("--modes", default="hash,load,shared")
    args = ap.parse_args()
    servers = {mode: Server(args.bin, args.workers, mode) for mode in args.modes.split(",")}
    try:
        count_trials(servers, 64, args.trials)
        count_trials(servers, 1000, 3)
        for mode, server in servers.items():
            ratios = [rate_trial(server, args.rate_seconds, 0.005, 0.05) for _ in range(3)]
            print("rate   %-5s half the connections 10x busier, after 2 s: requests/s max/mean %s (total %.0f/s)"
                  % (mode, " ".join("%.2f" % r for r, _ in ratios), statistics.mean(t for _, t in ratios)),
                  flush=True)
        lat = {mode: ([], []) for mode in servers}
        for _ in range(3):
            for mode, server in servers.items():
                times, share = latency_trial(server, 160, 200)
                lat[mode][0].extend(times)
                lat[mode][1].append(share)
        for mode, (times, shares) in lat.items():
            times.sort()
            print("first  %-5s connect to first response: p50 %.0f us p99 %.0f us; handed on %.0f%%"
                  % (mode, 1e6 * times[len(times) // 2], 1e6 * times[int(len(times) * 0.99)],
                     100 * statistics.mean(shares)), flush=True)
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
