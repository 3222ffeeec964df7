#!/usr/bin/env bash
# The test command: every unit, property and end-to-end test in the workspace, the short smoke
# runs (simulator, load) that CI keeps, then the browser tests of the operator console and the
# responder app (a real Chromium against a real `dispatch serve`).
#
# Every test binary runs even when one fails (cargo's --no-fail-fast), the browser tests run
# even when cargo's failed, and the command exits non-zero if anything failed, naming what.
# Installs Chromium and the pinned npm packages when missing (scripts/web-deps.sh), and the
# pinned NATS server for cluster mode's drills (scripts/nats-server.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
data="${DISPATCH_SHARED_DATA:-../shared/data}"
if [ ! -f "$data/porto_alegre.osm.pbf" ]; then
  echo "test.sh: $data/porto_alegre.osm.pbf is missing: the tests need ../shared/data beside the checkout" >&2
  exit 1
fi
failed=()
echo "== NATS server for cluster mode's drills (scripts/nats-server.sh installs it when missing)"
if nats_bin="$(scripts/nats-server.sh)"; then
  export NATS_SERVER_BIN="$nats_bin"
else
  failed+=("nats-server set-up")
fi
echo "== cargo test (every binary, no fail-fast)"
cargo test --workspace --locked --no-fail-fast || failed+=("cargo test")

echo "== browser tests (web/tests)"
if scripts/web-deps.sh && cargo build --locked -p dispatch-server --bin dispatch; then
  # The browser tests share the two cores with a server and Chromium: one file at a time.
  node --test --test-concurrency=1 web/tests/ || failed+=("browser tests")
else
  failed+=("browser test set-up")
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all passed"
