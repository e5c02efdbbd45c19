# One boot for the service unit: start, hardening, sysctl, reload under load, a
# broken config, the watchdog, and stop with a request in flight. Facts only; see lib.sh.
set -u
. /opt/cerberus/tests/lib.sh
install_cerberus

# 1. Start: Type=notify, so `systemctl start` returns once Cerberus said READY=1.
t0=$(now_ms)
systemctl start cerberus
say start_rc $?
say start_ms $(( $(now_ms) - t0 ))
say start_active "$(prop cerberus ActiveState)"
say start_status "$(prop cerberus StatusText)"
say start_body "$(curl -sS --max-time 5 http://127.0.0.1:8000/)"
pid=$(prop cerberus MainPID)
# Workers pinned to one CPU each: threads whose affinity is a single number.
say pinned_threads "$(grep -h Cpus_allowed_list /proc/$pid/task/*/status | awk '$2 ~ /^[0-9]+$/' | wc -l)"
say workers "$(curl -sS http://127.0.0.1:8010/metrics | awk '$1 == "cerberus_workers" {print $2}')"
say uid "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)"
say nofile "$(awk '/Max open files/ {print $4}' /proc/$pid/limits)"

# 8. Hardening, on the running unit, and verify of the installed units.
exposure() { systemd-analyze security "$1" 2>/dev/null | awk '/Overall exposure level/ {print $(NF-2)}'; }
say exposure "$(exposure cerberus.service)"
block security systemd-analyze security cerberus.service
systemd-analyze verify /etc/systemd/system/cerberus.service /etc/systemd/system/cerberus.socket \
  >/tmp/verify.out 2>/tmp/verify.err
say verify_rc $?
say verify_stderr_bytes "$(wc -c < /tmp/verify.err)"
block verify cat /tmp/verify.err
# For the README's table: Debian's units as installed (boot.sh masks them, so copies are loaded).
for u in nginx prometheus; do
  if [ -f /lib/systemd/system/$u.service ]; then
    cp /lib/systemd/system/$u.service /etc/systemd/system/measure-$u.service
  fi
done
systemctl daemon-reload
say exposure_nginx "$(exposure measure-nginx.service)"
say exposure_prometheus "$(exposure measure-prometheus.service)"
say exposure_localed "$(exposure systemd-localed.service)"
say exposure_hostnamed "$(exposure systemd-hostnamed.service)"

# 9. The sysctl file, in this network namespace.
sysctl -p /etc/sysctl.d/50-cerberus.conf >/dev/null 2>/tmp/sysctl.err
say sysctl_rc $?
block sysctl cat /tmp/sysctl.err
for key in $(awk -F' *= *' '/^[a-z]/ {print $1}' /etc/sysctl.d/50-cerberus.conf); do
  say "sysctl:$key" "$(sysctl -n "$key" | tr -s '\t ' ' ')"
done

# 2. Reload under load: 64 keep-alive connections for 5 s, a reload every 200 ms, alternating
# two configs whose bodies differ.
config_with_body alpha | put_config
systemctl reload cerberus
wait_until 5 sh -c 'curl -s http://127.0.0.1:8000/ | grep -qx alpha'
wrk_checking_bodies alpha bravo -t1 -c64 -d5s http://127.0.0.1:8000/ > /tmp/wrk.out 2>&1 &
wrk=$!
sleep 0.3
reloads=0; next=bravo; tick=$(now_ms)
while kill -0 $wrk 2>/dev/null; do
  config_with_body $next | put_config
  systemctl reload cerberus && reloads=$((reloads + 1))
  last=$next
  [ $next = bravo ] && next=alpha || next=bravo
  # Every 200 ms from the last tick; `systemctl reload` itself takes part of that.
  tick=$((tick + 200)); left=$((tick - $(now_ms)))
  [ $left -gt 0 ] && sleep "0.$(printf %03d $left)"
done
wait $wrk
say reload_wrk_rc $?
block reload_wrk cat /tmp/wrk.out
say reloads $reloads
say reload_nrestarts "$(prop cerberus NRestarts)"
say reload_active "$(prop cerberus ActiveState)"
say reload_same_pid "$([ "$(prop cerberus MainPID)" = "$pid" ] && echo yes || echo no)"

# 2b. `systemctl reload` returns once the reload is in force: the request sent right after it
# is answered under the new config, every time.
stale=0
for i in $(seq 1 100); do
  config_with_body "r$i" | put_config
  systemctl reload cerberus || stale=$((stale + 1000))
  [ "$(curl -sS --max-time 5 http://127.0.0.1:8000/)" = "r$i" ] || stale=$((stale + 1))
done
say ack_reloads_stale $stale
config_with_body "$last" | put_config
systemctl reload cerberus

# 3. A broken config on reload: `systemctl reload` fails, and the unit stays active with the
# last good body, and says so.
printf 'workers = "many"\n' | put_config
systemctl reload cerberus
say broken_reload_rc $?
wait_until 5 sh -c 'systemctl show -p StatusText --value cerberus | grep -q "^reload failed"'
say broken_active "$(prop cerberus ActiveState)"
say broken_status "$(prop cerberus StatusText)"
say broken_body_expected "$last"
say broken_body "$(curl -sS --max-time 5 http://127.0.0.1:8000/)"
curl -sS http://127.0.0.1:8010/metrics > /tmp/metrics.txt
say broken_last_reload_success "$(awk '$1 == "cerberus_last_reload_success" {print $2}' /tmp/metrics.txt)"
say broken_reload_failures "$(awk '$1 == "cerberus_reloads_total{result=\"failure\"}" {print $2}' /tmp/metrics.txt)"
config_with_body alpha | put_config

# 4. Watchdog: a frozen process is killed and restarted.
mkdir -p /etc/systemd/system/cerberus.service.d
printf '[Service]\nWatchdogSec=2s\n' > /etc/systemd/system/cerberus.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart cerberus
say watchdog_nrestarts_before "$(prop cerberus NRestarts)"
frozen=$(prop cerberus MainPID)
kill -STOP "$frozen"
t0=$(now_ms)
restarted() {
  [ "$(prop cerberus NRestarts)" -ge 1 ] && [ "$(prop cerberus ActiveState)" = active ] &&
    [ "$(prop cerberus MainPID)" != "$frozen" ] && curl -sf -o /dev/null http://127.0.0.1:8000/
}
wait_until 20 restarted
say watchdog_ms $(( $(now_ms) - t0 ))
say watchdog_nrestarts "$(prop cerberus NRestarts)"
say watchdog_active "$(prop cerberus ActiveState)"
say watchdog_new_pid "$([ "$(prop cerberus MainPID)" != "$frozen" ] && echo yes || echo no)"
say watchdog_body "$(curl -sS --max-time 5 http://127.0.0.1:8000/)"
say watchdog_logged "$(journalctl -u cerberus --no-pager | grep -c 'Watchdog timeout')"
rm -r /etc/systemd/system/cerberus.service.d
systemctl daemon-reload

# 5. Stop with a slow request in flight: half a body sent, stop, then the rest.
exec 3<>/dev/tcp/127.0.0.1/8000
printf 'POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10\r\n\r\n12345' >&3
sleep 0.3
t0=$(now_ms)
systemctl stop --no-block cerberus
wait_until 5 sh -c '[ "$(systemctl show -p ActiveState --value cerberus)" = deactivating ]'
sleep 1
say stop_state_midway "$(prop cerberus ActiveState)"
printf '67890' >&3
timeout 5 cat <&3 > /tmp/slow.out
exec 3<&-
wait_until 25 sh -c '[ "$(systemctl show -p ActiveState --value cerberus)" = inactive ]'
say stop_ms $(( $(now_ms) - t0 ))
say stop_status_line "$(head -1 /tmp/slow.out | tr -d '\r')"
say stop_body "$(tail -1 /tmp/slow.out)"
say stop_state "$(prop cerberus ActiveState)"
say stop_result "$(prop cerberus Result)"
say stop_exit_status "$(prop cerberus ExecMainStatus)"
block journal journalctl -u cerberus --no-pager -o cat

# 6. HTTPS, the key passed as a credential (deploy/systemd/cerberus.service.d/tls.conf): the
# key file stays root's, mode 0600, and the service's dynamic user still serves with it.
mkdir -p /etc/cerberus/tls
chmod 700 /etc/cerberus/tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout /etc/cerberus/tls/key.pem -out /etc/cerberus/tls/cert.pem -days 30 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
chmod 600 /etc/cerberus/tls/key.pem
say tls_key_mode "$(stat -c %a:%U /etc/cerberus/tls/key.pem)"
TLS=1 BINARY=/opt/cerberus/cerberus /opt/cerberus/deploy/install.sh >/dev/null
{ cat /opt/cerberus/deploy/cerberus.toml
  printf '\n[tls]\nlisten = "0.0.0.0:8443"\n'
  printf 'cert = "$CREDENTIALS_DIRECTORY/tls.crt"\nkey = "$CREDENTIALS_DIRECTORY/tls.key"\n'
} | put_config
systemctl daemon-reload
say tls_dropin "$(systemctl show -p DropInPaths --value cerberus)"
say tls_exposure "$(exposure cerberus.service)"
systemd-analyze verify /etc/systemd/system/cerberus.service \
  /etc/systemd/system/cerberus-https.socket >/dev/null 2>/tmp/verify-tls.err
say tls_verify_stderr_bytes "$(wc -c < /tmp/verify-tls.err)"
block tls_verify cat /tmp/verify-tls.err
# systemd hands credentials over by moving a mount into /run/credentials from a private
# namespace, which reaches the service only if / propagates mounts. On a host systemd makes /
# shared at boot; in a container (boot.sh sets $container) it leaves that to the manager, so do
# it here as one would. The probe then says whether a dynamic user can read its credential.
mount --make-rshared /
say tls_credentials_work "$(systemd-run --wait --pipe -q -p DynamicUser=yes \
  -p LoadCredential=probe:/etc/cerberus/tls/cert.pem \
  sh -c 'test -s "$CREDENTIALS_DIRECTORY/probe" && echo yes || echo no' 2>/dev/null)"
systemctl start cerberus
say tls_start_rc $?
say tls_status "$(prop cerberus StatusText)"
say tls_body "$(curl -sS --max-time 5 --cacert /etc/cerberus/tls/cert.pem https://localhost:8443/)"
say tls_uid "$(awk '/^Uid:/ {print $2}' /proc/$(prop cerberus MainPID)/status 2>/dev/null)"
# Renewal, as the drop-in documents it: new files, then a restart (systemd 252 reads
# credentials only at start). The served certificate must be the new one.
served_serial() {
  openssl s_client -connect localhost:8443 -servername localhost </dev/null 2>/dev/null |
    openssl x509 -noout -serial
}
say tls_serial_before "$(served_serial)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout /etc/cerberus/tls/key.pem -out /etc/cerberus/tls/cert.pem -days 30 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
chmod 600 /etc/cerberus/tls/key.pem
say tls_serial_file "$(openssl x509 -noout -serial -in /etc/cerberus/tls/cert.pem)"
systemctl restart cerberus
say tls_restart_rc $?
say tls_serial_after "$(served_serial)"
block tls_journal journalctl -u cerberus --no-pager -o cat -n 5
systemctl stop cerberus

# 7. The optional realtime drop-in (deploy/systemd/cerberus.service.d/realtime.conf): every
# thread under SCHED_FIFO, the service as hardened as before, and serving.
cp /opt/cerberus/deploy/systemd/cerberus.service.d/realtime.conf \
  /etc/systemd/system/cerberus.service.d/
systemctl daemon-reload
systemctl start cerberus
say rt_start_rc $?
pid=$(prop cerberus MainPID)
say rt_threads "$(ls /proc/$pid/task | wc -l)"
say rt_fifo_threads "$(cat /proc/$pid/task/*/sched | awk '$1 == "policy" && $3 == 1' | wc -l)"
say rt_body "$(curl -sS --max-time 5 http://127.0.0.1:8000/)"
say rt_exposure "$(exposure cerberus.service)"
systemctl stop cerberus
