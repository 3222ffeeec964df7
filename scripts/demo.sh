#!/usr/bin/env bash
# The demo, on the real Porto Alegre map and population:
#  1. dispatch quality: a short virtual-time simulation, our policy against the "nearest 3
#     within 500 m" baseline on the same scenario (simulator run);
#  2. the service: `dispatch serve` on a generated roster (loopback, a temporary data dir),
#     then a short load run over WebSocket (simulator load) and its summary.
# Reports land in target/demo/. Needs only the Rust toolchain and ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DISPATCH_SHARED_DATA:-../shared/data}"
map="$data/porto_alegre.osm.pbf"
grid="$data/porto_alegre_hexgrid.csv"
for f in "$map" "$grid"; do
  if [ ! -f "$f" ]; then
    echo "demo.sh: $f is missing: the demo needs ../shared/data beside the checkout" >&2
    exit 1
  fi
done
out="${DEMO_OUT:-target/demo}"
mkdir -p "$out"
cargo build --release --locked -p simulator -p dispatch-server
sim=./target/release/simulator
dispatch=./target/release/dispatch

echo "== 1. dispatch quality (virtual time, ${DEMO_HOURS:-2} h of alerts)"
"$sim" run --map "$map" --population "$grid" --hours "${DEMO_HOURS:-2}" --seed "${DEMO_SEED:-1}" \
  --out "$out/quality"

echo
echo "== 2. the service under load (loopback)"
"$sim" roster --map "$map" --population "$grid" --seed "${DEMO_SEED:-1}" \
  --roster-out "$out/roster.json" --tokens-out "$out/tokens.json"
data_dir="$(mktemp -d)"
log="$out/serve.log"
"$dispatch" serve --map "$map" --roster "$out/roster.json" --data-dir "$data_dir" \
  --listen 127.0.0.1:0 >"$log" 2>&1 &
server=$!
stop_server() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap stop_server EXIT
url=""
for _ in $(seq 1 300); do
  url="$(sed -n 's/.*WebSocket: \(ws:[^)]*\)).*/\1/p' "$log" | head -n 1)"
  [ -n "$url" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "demo.sh: dispatch serve exited; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.2
done
if [ -z "$url" ]; then
  echo "demo.sh: dispatch serve did not report its address within 60 s" >&2
  exit 1
fi
"$sim" load --url "$url" --roster "$out/roster.json" --tokens "$out/tokens.json" \
  --responders "${DEMO_RESPONDERS:-1000}" --alerts "${DEMO_ALERTS:-500}" \
  --alerts-per-s "${DEMO_ALERT_RATE:-100}" --location-hz 1 --max-duration-s 60 \
  --out "$out/load"
echo
echo "demo.sh: reports in $out/quality and $out/load (JSON, Markdown, SVG charts)"
