# Shared by the scripts that tests/systemd.rs runs inside a throwaway systemd (boot.sh).
# They only gather facts: every `say KEY VALUE` becomes a line `RESULT KEY=VALUE` that the Rust
# test parses and judges, and `block NAME CMD...` prefixes a command's output with `NAME| `.
# The repository's deploy/ is at /opt/cerberus/deploy and the binary at /opt/cerberus/cerberus.

say() { printf 'RESULT %s=%s\n' "$1" "$2"; }
block() { local name=$1; shift; "$@" 2>&1 | sed "s/^/$name| /"; }
now_ms() { date +%s%3N; }
prop() { systemctl show -p "$2" --value "$1"; }

# The install step of the issue: deploy/install.sh places binary, units, sysctl file, config.
install_cerberus() {
  BINARY=/opt/cerberus/cerberus /opt/cerberus/deploy/install.sh >/dev/null
  systemctl daemon-reload
}

# wait_until SECONDS CMD...: poll CMD every 50 ms; false if it never succeeded.
wait_until() {
  local end=$(( $(now_ms) + $1 * 1000 )); shift
  until "$@"; do
    [ "$(now_ms)" -lt "$end" ] || return 1
    sleep 0.05
  done
}

# The shipped config with another default body (`alpha` gives body "alpha\n").
config_with_body() {
  sed "s|^body = .*|body = \"$1\\\\n\"|" /opt/cerberus/deploy/cerberus.toml
}

# Replace the live config atomically, so a reload never reads half a file.
put_config() {
  cat > /etc/cerberus/.next.toml
  chmod 644 /etc/cerberus/.next.toml
  mv /etc/cerberus/.next.toml /etc/cerberus/cerberus.toml
}

# wrk with a script that counts bodies other than the two expected ones (WRONG_BODIES N).
wrk_checking_bodies() {
  local a=$1 b=$2; shift 2
  cat > /tmp/check.lua <<LUA
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) wrong = 0 end
response = function(status, headers, body)
  if body ~= "$a\n" and body ~= "$b\n" then wrong = wrong + 1 end
end
done = function(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("wrong") end
  io.write("WRONG_BODIES " .. total .. "\n")
end
LUA
  wrk --timeout 5s -s /tmp/check.lua "$@"
}
