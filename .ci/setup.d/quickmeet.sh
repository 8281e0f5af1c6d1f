#!/usr/bin/env bash
# QuickMeet interop: widely used DDP clients from npm (@rocket.chat/ddp-client, ddp) under Node.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v node >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi
(cd tests/interop/quickmeet_js && npm ci --no-audit --no-fund --silent --loglevel=error)
