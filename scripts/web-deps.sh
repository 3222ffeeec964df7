#!/usr/bin/env bash
# Installs what the browser tests need when it is missing, and nothing when it is there:
# Debian's Chromium (/usr/bin/chromium; never a downloaded browser), a CJK font (without one
# Chinese screenshots show empty boxes) and the pinned npm packages of web/tests (npm ci from
# package-lock.json). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "web-deps.sh: node and npm are needed for the browser tests" >&2
  exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "web-deps.sh: installing Debian's chromium"
  if [ "$(id -u)" -ne 0 ]; then
    echo "web-deps.sh: /usr/bin/chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q chromium >/dev/null
fi
if ! fc-list :lang=zh 2>/dev/null | grep -q . && [ "$(id -u)" -eq 0 ]; then
  echo "web-deps.sh: installing a Chinese font (fonts-wqy-microhei)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q fonts-wqy-microhei >/dev/null; }
fi
lock=web/tests/package-lock.json
stamp=web/tests/node_modules/.installed-from-lock
if [ ! -f "$stamp" ] || ! cmp -s "$lock" "$stamp"; then
  echo "web-deps.sh: npm ci in web/tests"
  (cd web/tests && npm ci --no-audit --no-fund --loglevel=error)
  cp "$lock" "$stamp"
fi
