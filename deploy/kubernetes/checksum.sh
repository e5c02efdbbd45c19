#!/bin/sh
# Write the sha256 of configmap.yaml's cerberus.toml into deployment.yaml's checksum/config
# annotation. Run it after every config change, then `kubectl apply -f deploy/kubernetes/`:
# the changed pod template rolls the pods onto the new config, one surge pod at a time.
#   deploy/kubernetes/checksum.sh [DIR]        # DIR defaults to this script's folder
set -eu
dir=${1:-$(cd "$(dirname "$0")" && pwd)}

# The block scalar under `cerberus.toml: |`, without its 4-space indent, as the pod sees it.
config_text() {
  awk '/^  cerberus.toml: \|$/ {on = 1; next}
       on && /^    / {print substr($0, 5); next}
       on && /^ *$/ {print ""; next}
       on {exit}' "$dir/configmap.yaml"
}
sum=$(config_text | sha256sum | cut -d' ' -f1)
sed -i "s|^\(        checksum/config: \)\".*\"|\1\"$sum\"|" "$dir/deployment.yaml"
echo "checksum/config: $sum"
