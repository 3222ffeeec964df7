#!/usr/bin/env bash
# The test command: every unit, property and end-to-end test in the workspace, plus the short
# smoke runs (simulator, load) that CI keeps. Needs only the Rust toolchain and ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DISPATCH_SHARED_DATA:-../shared/data}"
if [ ! -f "$data/porto_alegre.osm.pbf" ]; then
  echo "test.sh: $data/porto_alegre.osm.pbf is missing: the tests need ../shared/data beside the checkout" >&2
  exit 1
fi
cargo test --workspace --locked
