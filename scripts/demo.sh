#!/usr/bin/env bash
# The live demo, on the real Porto Alegre map and population (or another city's): `dispatch serve` on a generated
# roster (loopback, a temporary data dir) with `simulator live` feeding it a simulated day in
# wall-clock time: phones on duty and moving, alerts arriving from device gateways, simulated
# responders accepting, walking or driving their routes, arriving and completing. It prints
# the operator console's address (with an operator token) and the responder app's address for
# one volunteer left to you, and runs until Ctrl-C, which stops the simulator and the server.
#
#   scripts/demo.sh                # the live demo on http://127.0.0.1:8080 (DEMO_PORT=…)
#   scripts/demo.sh --load-report  # the short report instead: a virtual-time comparison of
#                                  # policies, then a load run over WebSocket (target/demo/)
#
# Environment: DEMO_PORT (8080), DEMO_SEED (1), DEMO_ALERTS_PER_MIN (3), DEMO_SPEEDUP (4),
# DEMO_VOLUNTEER (V00001, the one left to you), DEMO_MAX_S (86400), DEMO_OUT (target/demo),
# DEMO_MAP and DEMO_POPULATION (another city's .osm.pbf and population hexgrid CSV; by
# default Porto Alegre's in ../shared/data, or in DISPATCH_SHARED_DATA).
# Needs only the Rust toolchain and ../shared/data (or the two DEMO_ files).
set -euo pipefail
# another city's files, as paths from where the script was started (before the cd below)
if [ -n "${DEMO_MAP:-}${DEMO_POPULATION:-}" ]; then
  if [ -z "${DEMO_MAP:-}" ] || [ -z "${DEMO_POPULATION:-}" ]; then
    echo "demo.sh: set both DEMO_MAP and DEMO_POPULATION (one city's map and its people), or neither" >&2
    exit 2
  fi
  for f in "$DEMO_MAP" "$DEMO_POPULATION"; do
    if [ ! -f "$f" ]; then
      echo "demo.sh: $f is missing (DEMO_MAP / DEMO_POPULATION)" >&2
      exit 1
    fi
  done
  DEMO_MAP="$(cd "$(dirname "$DEMO_MAP")" && pwd)/$(basename "$DEMO_MAP")"
  DEMO_POPULATION="$(cd "$(dirname "$DEMO_POPULATION")" && pwd)/$(basename "$DEMO_POPULATION")"
fi
cd "$(dirname "$0")/.."
mode=live
case "${1:-}" in
  "") ;;
  --load-report) mode=report ;;
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "demo.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac
data="${DISPATCH_SHARED_DATA:-../shared/data}"
map="${DEMO_MAP:-$data/porto_alegre.osm.pbf}"
grid="${DEMO_POPULATION:-$data/porto_alegre_hexgrid.csv}"
for f in "$map" "$grid"; do
  if [ ! -f "$f" ]; then
    echo "demo.sh: $f is missing: the demo needs ../shared/data beside the checkout" >&2
    exit 1
  fi
done
out="${DEMO_OUT:-target/demo}"
mkdir -p "$out"
seed="${DEMO_SEED:-1}"
port="${DEMO_PORT:-8080}"
if [ "$mode" = live ]; then
  if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "demo.sh: DEMO_PORT='$port' is not a port number" >&2
    exit 2
  fi
  # Before the long build: say at once if somebody already listens there.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo.sh: port $port on 127.0.0.1 is already taken (another demo or server?)." >&2
    echo "demo.sh: stop it, or pick another port: DEMO_PORT=8081 scripts/demo.sh" >&2
    exit 1
  fi
fi
cargo build --release --locked -p simulator -p dispatch-server
sim=./target/release/simulator
dispatch=./target/release/dispatch

server=""
simpid=""
data_dir=""
stop_all() {
  trap - EXIT INT TERM
  if [ -n "$simpid" ] && kill -0 "$simpid" 2>/dev/null; then
    kill -TERM "$simpid" 2>/dev/null || true
    wait "$simpid" 2>/dev/null || true
  fi
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [ -n "$data_dir" ]; then rm -rf "$data_dir"; fi
}
trap stop_all EXIT
trap 'echo; echo "demo.sh: stopping"; stop_all; exit 0' INT TERM

# Starts `dispatch serve` on 127.0.0.1:$1 with the generated roster and sets $url to its
# WebSocket address.
start_server() {
  data_dir="$(mktemp -d)"
  log="$out/serve.log"
  "$dispatch" serve --map "$map" --roster "$out/roster.json" --data-dir "$data_dir" \
    --listen "127.0.0.1:$1" >"$log" 2>&1 &
  server=$!
  url=""
  for _ in $(seq 1 600); do
    url="$(sed -n 's/.*WebSocket: \(ws:[^)]*\)).*/\1/p' "$log" | head -n 1)"
    [ -n "$url" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
      wait "$server" 2>/dev/null || true
      server=""
      if grep -qi 'address already in use\|in use' "$log"; then
        echo "demo.sh: port $1 on 127.0.0.1 is already taken; pick another: DEMO_PORT=8081 scripts/demo.sh" >&2
      else
        echo "demo.sh: dispatch serve exited; its log ($log):" >&2
        cat "$log" >&2
      fi
      exit 1
    fi
    sleep 0.2
  done
  if [ -z "$url" ]; then
    echo "demo.sh: dispatch serve did not report its address within 120 s (log: $log)" >&2
    exit 1
  fi
}

echo "== the roster: people on the map $map (seed $seed)"
"$sim" roster --map "$map" --population "$grid" --seed "$seed" \
  --roster-out "$out/roster.json" --tokens-out "$out/tokens.json"

if [ "$mode" = report ]; then
  echo "== 1. dispatch quality (virtual time, ${DEMO_HOURS:-2} h of alerts)"
  "$sim" run --map "$map" --population "$grid" --hours "${DEMO_HOURS:-2}" --seed "$seed" \
    --out "$out/quality"
  echo
  echo "== 2. the service under load (loopback)"
  start_server 0
  "$sim" load --url "$url" --roster "$out/roster.json" --tokens "$out/tokens.json" \
    --responders "${DEMO_RESPONDERS:-1000}" --alerts "${DEMO_ALERTS:-500}" \
    --alerts-per-s "${DEMO_ALERT_RATE:-100}" --location-hz 1 --max-duration-s 60 \
    --out "$out/load"
  echo
  echo "demo.sh: reports in $out/quality and $out/load (JSON, Markdown, SVG charts)"
  exit 0
fi

volunteer="${DEMO_VOLUNTEER:-V00001}"
# The tokens file is pretty-printed JSON, one "id": "token" per line.
op_token="$(sed -n 's/^ *"OP1": "\([^"]*\)".*/\1/p' "$out/tokens.json" | head -n 1)"
v_token="$(sed -n "s/^ *\"$volunteer\": \"\([^\"]*\)\".*/\1/p" "$out/tokens.json" | head -n 1)"
if [ -z "$op_token" ] || [ -z "$v_token" ]; then
  echo "demo.sh: no token for OP1 or $volunteer in $out/tokens.json" >&2
  exit 1
fi
echo "== the service on 127.0.0.1:$port (loading the map takes a little while)"
start_server "$port"
"$sim" live --url "$url" --roster "$out/roster.json" --tokens "$out/tokens.json" \
  --seed "$seed" --alerts-per-min "${DEMO_ALERTS_PER_MIN:-3}" --speedup "${DEMO_SPEEDUP:-4}" \
  --max-duration-s "${DEMO_MAX_S:-86400}" --leave-free "$volunteer" &
simpid=$!
base="http://127.0.0.1:$port"
cat <<EOF

  Operator console:  $base/console/?access_token=$op_token
  Responder app for $volunteer (left to you, not simulated):
                     $base/responder/?access_token=$v_token

  A simulated day is running: phones going on duty, about ${DEMO_ALERTS_PER_MIN:-3} alerts a minute,
  responders accepting and walking (travel and on-scene time ${DEMO_SPEEDUP:-4}x faster than life).
  The simulator logs a line every 30 s; the server logs to $out/serve.log. Ctrl-C stops both.

EOF
# Until Ctrl-C (the trap stops both), or until either of them ends by itself.
while kill -0 "$simpid" 2>/dev/null && kill -0 "$server" 2>/dev/null; do
  sleep 1
done
if ! kill -0 "$server" 2>/dev/null; then
  echo "demo.sh: dispatch serve stopped; its log ($out/serve.log):" >&2
  tail -n 20 "$out/serve.log" >&2
  exit 1
fi
wait "$simpid" || { echo "demo.sh: simulator live stopped with an error" >&2; exit 1; }
echo "demo.sh: the simulated day is over (DEMO_MAX_S)"
