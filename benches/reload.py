#!/usr/bin/env python3
"""Reload under load: Cerberus vs nginx.

wrk keeps CONNS connections busy for DURATION seconds while the server is sent SIGHUP every
200 ms, alternating two configs whose bodies differ (with --change-workers, Cerberus's two
configs also differ in worker count: 1 and 2). nginx runs with `reuseport` and 2 workers and
is reloaded the same way (SIGHUP to its master). The report counts what clients lost.

    cargo build --release
    python3 benches/reload.py [--conns 64] [--duration 10] [--change-workers]

Needs wrk; nginx is optional.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CERBERUS = 'listen = "127.0.0.1:{port}"\nworkers = {workers}\nmetrics_listen = "off"\n' \
           '[default_response]\nbody = "{body}\\n"\n'
NGINX = """worker_processes 2;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 65536; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    location / {{ default_type text/plain; return 200 "{body}\\n"; }}
  }}
}}
"""
LUA = """
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) wrong = 0 end
response = function(status, headers, body)
  if body ~= "alpha\\n" and body ~= "bravo\\n" then wrong = wrong + 1 end
end
done = function(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("wrong") end
  io.write("WRONG_BODIES " .. total .. "\\n")
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc):
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"reload.py: server exited with {proc.returncode}")
            time.sleep(0.05)
    sys.exit(f"reload.py: nothing listens on {port}")


def run(name, argv, config_path, configs, port, args, tmp):
    with open(config_path, "w") as f:
        f.write(configs[0])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port, proc)
        script = os.path.join(tmp, "check.lua")
        with open(script, "w") as f:
            f.write(LUA)
        threads = 2 if args.conns > 100 else 1
        wrk = subprocess.Popen(["wrk", f"-t{threads}", f"-c{args.conns}", f"-d{args.duration}s", "--timeout", "5s",
                                "-s", script, f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)
        reloads = 0
        time.sleep(0.3)
        end = time.time() + args.duration - 1
        while time.time() < end:
            time.sleep(0.2)
            reloads += 1
            with open(config_path, "w") as f:
                f.write(configs[reloads % 2])
            os.kill(proc.pid, signal.SIGHUP)
        out = wrk.communicate()[0]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    requests, errors, non2xx, wrong = 0, 0, 0, 0
    for line in out.splitlines():
        line = line.strip()
        if "requests in" in line:
            requests = int(line.split()[0])
        elif line.startswith("Socket errors"):
            errors = sum(int(p.split()[1]) for p in line.split(":", 1)[1].split(","))
        elif line.startswith("Non-2xx"):
            non2xx = int(line.split(":")[1])
        elif line.startswith("WRONG_BODIES"):
            wrong = int(line.split()[1])
    print(f"{name:9} {reloads:8d} {requests:10d} {errors:14d} {non2xx:8d} {wrong:12d}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/cerberus"))
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--change-workers", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("reload.py: wrk is missing (apt-get install wrk)")
    tmp = tempfile.mkdtemp(prefix="cerberus-reload-")
    try:
        print(f"{'server':9} {'reloads':>8} {'requests':>10} {'socket errors':>14} {'non-2xx':>8} {'wrong bodies':>12}")
        port = free_port()
        workers = (1, 2) if args.change_workers else (2, 2)
        configs = [CERBERUS.format(port=port, workers=w, body=b) for w, b in zip(workers, ("alpha", "bravo"))]
        path = os.path.join(tmp, "cerberus.toml")
        run("cerberus", [args.bin, "--config", path], path, configs, port, args, tmp)
        if shutil.which("nginx"):
            port = free_port()
            configs = [NGINX.format(tmp=tmp, port=port, body=b) for b in ("alpha", "bravo")]
            path = os.path.join(tmp, "nginx.conf")
            run("nginx", ["nginx", "-c", path], path, configs, port, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
