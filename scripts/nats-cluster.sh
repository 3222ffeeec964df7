#!/usr/bin/env bash
# A three-server NATS cluster with JetStream on this machine, for trying cluster mode and for
# its benchmarks (docs/cluster.md). Not for production: there, each server is its own machine
# (the config written here shows every setting that matters).
#
#   scripts/nats-cluster.sh start DIR [BASE_PORT]   # clients on BASE..BASE+2 (default 14222),
#                                                   # routes on BASE+100..; prints the --nats list
#   scripts/nats-cluster.sh stop DIR
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-}"; dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR [BASE_PORT]" >&2
  exit 2
fi
case "$cmd" in
  start)
    base="${3:-14222}"
    bin="$(scripts/nats-server.sh)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    urls=()
    for i in 0 1 2; do
      routes=()
      for j in 0 1 2; do
        [ "$j" = "$i" ] || routes+=("nats-route://127.0.0.1:$((base + 100 + j))")
      done
      cat > "$dir/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((base + i))
jetstream {
  store_dir: "$dir/n$i"
  # fsync every write before acknowledging it (the default, 2 min, acknowledges unsynced)
  sync_interval: always
}
cluster {
  name: dispatch
  listen: 127.0.0.1:$((base + 100 + i))
  routes: [$(IFS=,; echo "${routes[*]}")]
}
CONF
      "$bin" -c "$dir/n$i.conf" > "$dir/n$i.log" 2>&1 &
      echo $! > "$dir/n$i.pid"
      urls+=("nats://127.0.0.1:$((base + i))")
    done
    for i in 0 1 2; do
      for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$((base + i))") 2>/dev/null && break
        sleep 0.1
      done
    done
    (IFS=,; echo "${urls[*]}")
    ;;
  stop)
    for f in "$dir"/n*.pid; do
      [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    done
    ;;
  *)
    echo "usage: $0 start|stop DIR [BASE_PORT]" >&2
    exit 2
    ;;
esac
