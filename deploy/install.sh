#!/bin/sh
# Install Cerberus as a systemd service: the binary, the units, the sysctl file and a config.
#
#   cargo build --release && sudo deploy/install.sh
#   DESTDIR=/tmp/pkg PREFIX=/usr BINARY=path/to/cerberus deploy/install.sh   # for packaging
#   TLS=1 deploy/install.sh    # also the drop-in passing the HTTPS key as a credential
#
# An existing /etc/cerberus/cerberus.toml is never overwritten: the shipped one is then put
# beside it as cerberus.toml.new. Nothing is started; the last lines say what to run.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINARY=${BINARY:-$here/../target/release/cerberus}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$SYSCONFDIR/systemd/system}

[ -x "$BINARY" ] || { echo "install.sh: no binary at $BINARY (cargo build --release, or set BINARY=)" >&2; exit 1; }

install -D -m 755 "$BINARY" "$DESTDIR$PREFIX/bin/cerberus"

# The unit names the binary by its installed path.
install -d -m 755 "$DESTDIR$UNITDIR"
sed "s|/usr/local/bin/cerberus|$PREFIX/bin/cerberus|; s|/etc/cerberus/|$SYSCONFDIR/cerberus/|" \
  "$here/systemd/cerberus.service" > "$DESTDIR$UNITDIR/cerberus.service"
chmod 644 "$DESTDIR$UNITDIR/cerberus.service"
install -m 644 "$here/systemd/cerberus.socket" "$DESTDIR$UNITDIR/cerberus.socket"
# TLS=1: the drop-in that passes the HTTPS certificate and key as credentials.
if [ "${TLS:-0}" = 1 ]; then
  install -D -m 644 "$here/systemd/cerberus.service.d/tls.conf" \
    "$DESTDIR$UNITDIR/cerberus.service.d/tls.conf"
  install -m 644 "$here/systemd/cerberus-https.socket" "$DESTDIR$UNITDIR/cerberus-https.socket"
fi

install -D -m 644 "$here/sysctl.d/cerberus.conf" "$DESTDIR$SYSCONFDIR/sysctl.d/50-cerberus.conf"

# The service runs as a dynamic user: the config must be world-readable, not writable.
config="$DESTDIR$SYSCONFDIR/cerberus/cerberus.toml"
install -d -m 755 "$DESTDIR$SYSCONFDIR/cerberus"
if [ -e "$config" ]; then
  install -m 644 "$here/cerberus.toml" "$config.new"
  echo "install.sh: kept $config; the shipped one is $config.new"
else
  install -m 644 "$here/cerberus.toml" "$config"
fi

echo "install.sh: installed; now: systemctl daemon-reload && sysctl --system &&"
echo "  systemctl enable --now cerberus        # or cerberus.socket to serve port 80"
