# One boot for the socket unit: socket activation on port 80 with no capability, and
# `systemctl restart` under load while systemd holds the socket. Facts only; see lib.sh.
set -u
. /opt/cerberus/tests/lib.sh
install_cerberus

# 6. Port 80 through cerberus.socket; the first connection starts the service.
systemctl start cerberus.socket
say socket_active "$(prop cerberus.socket ActiveState)"
say socket_service_before "$(prop cerberus ActiveState)"
say socket_body "$(curl -sS --max-time 5 http://127.0.0.1:80/)"
# Cerberus answers as soon as it listens; READY=1 reaches systemd a moment later.
wait_until 5 sh -c '[ "$(systemctl show -p ActiveState --value cerberus)" = active ]'
say socket_service_after "$(prop cerberus ActiveState)"
say socket_status "$(prop cerberus StatusText)"
pid=$(prop cerberus MainPID)
say socket_uid "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)"
say socket_capbnd "$(awk '/^CapBnd:/ {print $2}' /proc/$pid/status)"
say socket_capeff "$(awk '/^CapEff:/ {print $2}' /proc/$pid/status)"
say socket_capprm "$(awk '/^CapPrm:/ {print $2}' /proc/$pid/status)"
say socket_unit_capbnd "$(prop cerberus CapabilityBoundingSet)"

# 7. Restart under load: 64 connections keep sending while the process is replaced.
wrk --timeout 5s --latency -t1 -c64 -d6s http://127.0.0.1:80/ > /tmp/wrk.out 2>&1 &
wrk=$!
sleep 2
t0=$(now_ms)
systemctl restart cerberus
say restart_rc $?
say restart_ms $(( $(now_ms) - t0 ))
wait $wrk
say restart_wrk_rc $?
block restart_wrk cat /tmp/wrk.out
say restart_new_pid "$([ "$(prop cerberus MainPID)" != "$pid" ] && echo yes || echo no)"
say restart_active "$(prop cerberus ActiveState)"
say restart_nrestarts "$(prop cerberus NRestarts)"
# The gap: from the old process's last accept (it logs "shutting down" as it stops accepting)
# to the new one's "listening on". Connections wait in systemd's socket meanwhile.
say restart_gap_ms "$(journalctl -u cerberus -o short-monotonic --no-pager |
  sed -n 's/^\[ *\([0-9.]*\)\].*\(shutting down\|listening on\).*/\1 \2/p' |
  awk '$2 == "shutting" {s = $1} $2 == "listening" && s {print int(($1 - s) * 1000); exit}')"
block journal journalctl -u cerberus --no-pager -o cat
