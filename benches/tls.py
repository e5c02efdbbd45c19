#!/usr/bin/env python3
"""HTTPS side by side: Cerberus against Debian's nginx with OpenSSL, each with one worker pinned
to the same CPU and the load on the other, servers alternating round by round.

Scenarios (the figure compared is server CPU, so a load generator slower than the server still
gives a fair ratio):
  full       full TLS 1.3 handshakes (one GET each, Connection: close): handshakes per server
             CPU second
  resumed    the same, resumed from the client's ticket (TLS 1.3): handshakes per CPU second
  full12     full TLS 1.2 handshakes (ECDHE)
  keepalive  GET / on 64 keep-alive connections with wrk: server CPU per request
  mib        a 1 MiB response on 8 keep-alive connections with wrk: server CPU per MiB
  idle       --idle N connections, handshaken, one request each, then idle: RSS per connection
  rotate     a SIGHUP every 200 ms for 10 s, each swapping the certificate files, under a full
             handshake load: failed handshakes and requests, for both servers

    cargo build --release && cargo build --release --example tls_load
    python3 benches/tls.py [--scenarios full,resumed,keepalive,mib,rotate] [--key ecdsa|rsa]
                           [--rounds 3] [--duration 5] [--idle 10000]

Needs nginx (Debian's, with ssl), wrk, openssl, taskset.
"""
import argparse
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
CERBERUS = os.path.join(ROOT, "target/release/cerberus")
TLS_LOAD = os.path.join(ROOT, "target/release/examples/tls_load")

NGINX = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 30000; use epoll; multi_accept on; }}
worker_rlimit_nofile 20000;
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  ssl_session_tickets on;
  server {{
    listen 127.0.0.1:{port} ssl reuseport backlog=4096;
    ssl_certificate {tmp}/cert.pem;
    ssl_certificate_key {tmp}/key.pem;
    location = /mib {{ default_type application/octet-stream; alias {tmp}/mib; }}
    location / {{ default_type text/plain; return 200 "OK"; }}
  }}
}}
"""

CERBERUS_CONF = """listen = "127.0.0.1:{plain}"
workers = 1
pin = false
metrics_listen = "off"
max_connections = 20000
[tls]
listen = "127.0.0.1:{port}"
cert = "{tmp}/cert.pem"
key = "{tmp}/key.pem"
[default_response]
status = 200
content_type = "text/plain"
body = "OK"
[[route]]
path = "/mib"
handler = "shape"
[route.shape]
size = "1048576"
query = false
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(root):
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(root):
    total = 0
    for p in tree_pids(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def rss_bytes(root):
    total = 0
    for p in tree_pids(root):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def make_cert(tmp, stem, key):
    new_key = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if key == "ecdsa"
               else ["-newkey", "rsa:2048"])
    subprocess.run(["openssl", "req", "-x509", *new_key, "-nodes", "-keyout", f"{tmp}/{stem}.key",
                    "-out", f"{tmp}/{stem}.crt", "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)


def use_cert(tmp, stem):
    """Swap the served files (atomically each) to the pair `stem`."""
    for src, dst in ((f"{stem}.crt", "cert.pem"), (f"{stem}.key", "key.pem")):
        shutil.copy(f"{tmp}/{src}", f"{tmp}/.next")
        os.replace(f"{tmp}/.next", f"{tmp}/{dst}")


class Server:
    def __init__(self, name, argv, port, cpu):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit(f"tls.py: {name} does not listen on {port}")

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def hup(self):
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        except Exception:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def handshakes(server, mode, args, version="1.3", during=None):
    cmd = ["taskset", "-c", str(args.client_cpu), TLS_LOAD, f"127.0.0.1:{server.port}", mode,
           str(args.threads), str(args.duration), version]
    before = server.cpu()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    if during:
        during(proc)
    out = proc.communicate()[0]
    used = server.cpu() - before
    fields = dict(kv.split("=") for kv in out.split("\n")[0].split())
    n, failed = int(fields["handshakes"]), int(fields["failed"])
    return {"per_cpu_s": n / used if used else 0, "handshakes": n, "failed": failed,
            "resumed": int(fields["resumed"]), "errors": out.split("\n")[1:4]}


def wrk(server, path, conns, args):
    cmd = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{conns}", f"-d{int(args.duration)}s",
           f"https://127.0.0.1:{server.port}{path}"]
    before = server.cpu()
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    used = server.cpu() - before
    line = next((l for l in out.splitlines() if "requests in" in l), None)
    if line is None:
        sys.exit(f"tls.py: wrk against {server.name} printed no total:\n{out}")
    reqs = int(line.split()[0])
    errors = sum(int(x) for l in out.splitlines() if "Non-2xx" in l for x in [l.split(":")[1]])
    errors += sum(int(p.split()[1].rstrip(",")) for l in out.splitlines()
                  if l.strip().startswith("Socket errors") for p in l.split(":", 1)[1].split(","))
    return {"requests": reqs, "cpu_us_per_req": used * 1e6 / reqs if reqs else float("inf"),
            "errors": errors}


def idle(server, n):
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    time.sleep(0.5)
    base = rss_bytes(server.proc.pid)
    conns = []
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port)),
                            server_hostname="localhost")
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        conns.append(s)
    ok = sum(1 for s in conns if s.recv(4096).startswith(b"HTTP/1.1 200"))
    time.sleep(1)
    after = rss_bytes(server.proc.pid)
    for s in conns:
        s.close()
    return {"conns": n, "ok": ok, "bytes_per_conn": (after - base) / n,
            "rss_mib": (base / 2**20, after / 2**20)}


def rotate(server, args, tmp):
    """A SIGHUP every 200 ms for the run, each swapping the certificate, under full handshakes."""
    def reloads(proc):
        i = 0
        while proc.poll() is None:
            use_cert(tmp, "b" if i % 2 == 0 else "a")
            server.hup()
            i += 1
            time.sleep(0.2)
        use_cert(tmp, "a")
    return handshakes(server, "full", args, during=reloads)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="full,resumed,full12,keepalive,mib,rotate")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--threads", type=int, default=4, help="tls_load threads")
    ap.add_argument("--key", default="ecdsa", choices=["ecdsa", "rsa"])
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    args = ap.parse_args()
    for tool in ("nginx", "wrk", "openssl", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"tls.py: needs {tool}")
    for binary in (CERBERUS, TLS_LOAD):
        if not os.path.exists(binary):
            sys.exit(f"tls.py: no {binary}: cargo build --release && cargo build --release --example tls_load")
    tmp = tempfile.mkdtemp(prefix="tls-bench-")
    # nginx's worker drops root for `nobody`, and must read the 1 MiB file (and the key).
    os.chmod(tmp, 0o755)
    servers = []
    try:
        make_cert(tmp, "a", args.key)
        make_cert(tmp, "b", args.key)
        use_cert(tmp, "a")
        with open(f"{tmp}/mib", "wb") as f:
            f.write(os.urandom(1 << 20))
        for name in os.listdir(tmp):
            os.chmod(f"{tmp}/{name}", 0o644)
        port = free_port()
        with open(f"{tmp}/nginx.conf", "w") as f:
            f.write(NGINX.format(tmp=tmp, port=port))
        servers.append(Server("nginx", ["nginx", "-c", f"{tmp}/nginx.conf"], port, args.server_cpu))
        port, plain = free_port(), free_port()
        with open(f"{tmp}/cerberus.toml", "w") as f:
            f.write(CERBERUS_CONF.format(tmp=tmp, port=port, plain=plain))
        servers.append(Server("cerberus", [CERBERUS, "--config", f"{tmp}/cerberus.toml"], port,
                              args.server_cpu))
        results = {}
        for sc in args.scenarios.split(","):
            if sc == "idle":
                for s in servers:
                    r = idle(s, args.idle)
                    results.setdefault(sc, {})[s.name] = [r]
                    print(f"idle {s.name}: {r['ok']}/{r['conns']} answered, RSS {r['rss_mib'][0]:.1f} -> "
                          f"{r['rss_mib'][1]:.1f} MiB, {r['bytes_per_conn']:.0f} bytes per idle TLS connection",
                          flush=True)
                continue
            rounds = 1 if sc == "rotate" else args.rounds
            for _ in range(rounds):
                for s in servers:
                    if sc == "full":
                        r = handshakes(s, "full", args)
                    elif sc == "resumed":
                        r = handshakes(s, "resumed", args)
                    elif sc == "full12":
                        r = handshakes(s, "full", args, version="1.2")
                    elif sc == "keepalive":
                        r = wrk(s, "/", 64, args)
                    elif sc == "mib":
                        r = wrk(s, "/mib", 8, args)
                    elif sc == "rotate":
                        saved = args.duration
                        args.duration = 10
                        r = rotate(s, args, tmp)
                        args.duration = saved
                    else:
                        sys.exit(f"tls.py: no scenario {sc}")
                    results.setdefault(sc, {}).setdefault(s.name, []).append(r)
                    print(sc, s.name, {k: v for k, v in r.items() if k != "errors" or v}, flush=True)
        print()
        for sc, by in results.items():
            if sc == "idle":
                c, n = by["cerberus"][0]["bytes_per_conn"], by["nginx"][0]["bytes_per_conn"]
                print(f"{sc:10} cerberus {c:8.0f} B/conn  nginx {n:8.0f} B/conn  ratio {c / n:.2f}")
                continue
            if sc == "rotate":
                # nginx's reload replaces its worker, whose CPU then leaves the process tree:
                # only failures compare.
                print(f"{sc:10} failed handshakes or requests: cerberus "
                      f"{by['cerberus'][0]['failed']} of {by['cerberus'][0]['handshakes']}, nginx "
                      f"{by['nginx'][0]['failed']} of {by['nginx'][0]['handshakes']}")
                continue
            key = "cpu_us_per_req" if sc in ("keepalive", "mib") else "per_cpu_s"
            med = {n: statistics.median(r[key] for r in rs) for n, rs in by.items()}
            fails = {n: sum(r.get("failed", r.get("errors", 0)) for r in rs) for n, rs in by.items()}
            ratio = med["cerberus"] / med["nginx"] if med["nginx"] else float("nan")
            unit = "us/req" if key == "cpu_us_per_req" else "hs/cpu-s"
            print(f"{sc:10} cerberus {med['cerberus']:10.1f} {unit}  nginx {med['nginx']:10.1f} {unit}  "
                  f"cerberus/nginx {ratio:5.2f}  failed: cerberus {fails['cerberus']} nginx {fails['nginx']}")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
