#!/usr/bin/env bash
# Voxsig interop: a real ActionCable server (Debian's Rails 6.1 packages + Puma) and the official
# @rails/actioncable client under Node, with the `ws` package as its WebSocket.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v puma >/dev/null 2>&1 || ! ruby -e 'require "action_cable"' >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends ruby-actioncable puma >/dev/null
fi
if ! command -v node >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi
(cd tests/interop/voxsig_js && npm ci --no-audit --no-fund --silent)
