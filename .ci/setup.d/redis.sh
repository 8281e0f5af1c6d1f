#!/usr/bin/env bash
# Hot standby and fleet tests (tests/redis): Debian's redis-server; the tests start their own on a free port.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends redis-server >/dev/null
fi
