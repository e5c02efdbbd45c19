#!/usr/bin/env python3
"""Cerberus load benchmark: wrk against Cerberus and, where installed, nginx.

Each server is pinned to one CPU and wrk to another; the servers take turns, round by round,
and the report gives medians and the ratio of Cerberus to nginx. Run it on a quiet machine.

    cargo build --release
    python3 benches/load.py                        # all scenarios, 3 rounds of 5 s
    python3 benches/load.py --scenarios pipe16 --rounds 5

Scenarios (64 connections unless noted):
    get        GET / on keep-alive connections
    pipe16     16 pipelined GET / per write
    post-json  POST / with a 1 KiB JSON body (Cerberus validates it)
    close      Connection: close, one TCP connection per request (16 connections)

Figures: rps (responses per second wrk saw); cpu_us/req (server CPU time, user+system, all
threads, per response: what separates servers when wrk is the bottleneck); errors (socket
errors + non-2xx; must be 0). Needs wrk (apt-get install wrk); nginx is optional.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")

JSON_BODY = ('{"order":1234,"customer":{"name":"Ada","email":"ada@example.com"},"items":['
             + ",".join(f'{{"id":{i},"name":"item-{i}","price":{i * 7}.25,"tags":["a","b","c"],"ok":true}}'
                        for i in range(1, 13)) + "]}")

SCRIPTS = {
    "get": "",
    "pipe16": 'init = function(args)\n  local r = {}\n  for i = 1, 16 do r[i] = wrk.format(nil, "/") end\n'
              '  req = table.concat(r)\nend\nrequest = function() return req end\n',
    "post-json": f'wrk.method = "POST"\nwrk.body = \'{JSON_BODY}\'\n'
                 'wrk.headers["Content-Type"] = "application/json"\n',
    "close": 'wrk.headers["Connection"] = "close"\n',
}
CONNS = {"close": 16}

NGINX = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 65536; use epoll; multi_accept on; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    location / {{ default_type text/plain; return 200 "Hello from nginx!\\n"; }}
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system time of a process and its children processes (threads are included)."""
    total = 0.0
    pids = [pid] + [int(p) for p in os.listdir("/proc") if p.isdigit() and parent(int(p)) == pid]
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
        except (OSError, ValueError, IndexError):
            pass
    return total


def parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


class Server:
    def __init__(self, name, argv, port, cpu):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"load.py: {name} exited with {self.proc.returncode}")
                time.sleep(0.05)
        sys.exit(f"load.py: {name} is not listening on {port}")

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


def wrk(server, scenario, args, tmp):
    script = os.path.join(tmp, scenario + ".lua")
    with open(script, "w") as f:
        f.write(SCRIPTS[scenario])
    cmd = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{CONNS.get(scenario, 64)}",
           f"-d{args.duration}s", "-s", script, f"http://127.0.0.1:{server.port}/"]
    before = cpu_seconds(server.proc.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(server.proc.pid) - before
    requests, seconds, errors = 0, float(args.duration), 0
    for line in out.splitlines():
        if "requests in" in line:
            requests = int(line.split()[0])
            seconds = float(line.split(" in ")[1].split(",")[0].rstrip("s"))
        elif line.strip().startswith("Socket errors"):
            errors += sum(int(part.split()[1]) for part in line.split(":", 1)[1].split(","))
        elif "Non-2xx" in line:
            errors += int(line.split(":")[1])
    return requests / seconds, (used * 1e6 / requests if requests else float("inf")), errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/cerberus"))
    ap.add_argument("--scenarios", default="get,pipe16,post-json,close")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("load.py: wrk is missing (apt-get install wrk)")
    if not os.path.exists(args.bin):
        sys.exit(f"load.py: {args.bin} is missing (cargo build --release)")

    tmp = tempfile.mkdtemp(prefix="cerberus-load-")
    servers = []
    try:
        port = free_port()
        servers.append(Server("cerberus", [args.bin, "--workers", "1", "--metrics-listen", "off",
                                           "--listen", f"127.0.0.1:{port}"], port, args.server_cpu))
        if shutil.which("nginx"):
            port = free_port()
            with open(os.path.join(tmp, "nginx.conf"), "w") as f:
                f.write(NGINX.format(tmp=tmp, port=port))
            servers.append(Server("nginx", ["nginx", "-c", os.path.join(tmp, "nginx.conf")], port,
                                  args.server_cpu))
        else:
            print("load.py: nginx is not installed; measuring Cerberus alone")
        print(f"{'scenario':10} {'server':9} {'rps':>10} {'cpu_us/req':>10} {'errors':>6} {'rps/nginx':>9} "
              f"{'cpu/nginx':>9}")
        for scenario in args.scenarios.split(","):
            runs = {s.name: [] for s in servers}
            for _ in range(args.rounds):
                for s in servers:
                    runs[s.name].append(wrk(s, scenario, args, tmp))
            med = {n: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs),
                       sum(r[2] for r in rs)) for n, rs in runs.items()}
            ng = med.get("nginx")
            for name, (rps, cpu, errors) in med.items():
                ratios = f"{rps / ng[0]:9.2f} {cpu / ng[1]:9.2f}" if ng else f"{'-':>9} {'-':>9}"
                print(f"{scenario:10} {name:9} {rps:10.0f} {cpu:10.2f} {errors:6d} {ratios}")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
