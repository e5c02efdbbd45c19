#!/bin/sh
# Build the Cerberus container image.
#
#   deploy/container/build.sh                       # static release build, then podman build
#   BINARY=target/debug/cerberus TAG=cerberus:dev deploy/container/build.sh
#
# Without BINARY it builds a static binary (glibc, crt-static). With BINARY it uses that one;
# a dynamically linked binary (a debug build) brings the libraries ldd names along, so tests
# can reuse the binary they already have. CONTAINER_TOOL=docker works too.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$here/../..
TAG=${TAG:-cerberus:latest}
TOOL=${CONTAINER_TOOL:-podman}

if [ -z "${BINARY:-}" ]; then
  (cd "$repo" && RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --target x86_64-unknown-linux-gnu)
  BINARY=$repo/target/x86_64-unknown-linux-gnu/release/cerberus
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
install -D -m 755 "$BINARY" "$root/usr/local/bin/cerberus"
# The release profile keeps line tables for profiling; the image does not need them.
if command -v strip >/dev/null 2>&1; then strip "$root/usr/local/bin/cerberus"; fi
if ldd "$BINARY" >/dev/null 2>&1; then
  ldd "$BINARY" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' |
    while read -r lib; do install -D -m 755 "$lib" "$root$lib"; done
fi
install -D -m 644 "$here/passwd" "$root/etc/passwd"
install -D -m 644 "$here/group" "$root/etc/group"
install -D -m 644 "$here/cerberus.toml" "$root/etc/cerberus/cerberus.toml"
cp "$here/Containerfile" "$ctx/Containerfile"
"$TOOL" build --quiet -f "$ctx/Containerfile" -t "$TAG" "$ctx"
