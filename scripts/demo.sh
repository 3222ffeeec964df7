#!/usr/bin/env bash
# The demo: a short virtual-time simulation on the real Porto Alegre map and population, our
# dispatch policy against the "nearest 3 within 500 m" baseline, on the same scenario.
# Prints the summary; the full report (JSON, Markdown, SVG charts) lands in target/demo/.
# Needs only the Rust toolchain and ../shared/data beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DISPATCH_SHARED_DATA:-../shared/data}"
for f in porto_alegre.osm.pbf porto_alegre_hexgrid.csv; do
  if [ ! -f "$data/$f" ]; then
    echo "demo.sh: $data/$f is missing: the demo needs ../shared/data beside the checkout" >&2
    exit 1
  fi
done
out="${DEMO_OUT:-target/demo}"
cargo build --release --locked -p simulator
./target/release/simulator run \
  --map "$data/porto_alegre.osm.pbf" \
  --population "$data/porto_alegre_hexgrid.csv" \
  --hours "${DEMO_HOURS:-2}" --seed "${DEMO_SEED:-1}" \
  --out "$out"
echo
echo "demo.sh: report in $out/report.json, charts in $out/*.svg"
