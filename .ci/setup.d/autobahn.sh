#!/usr/bin/env bash
# WebSocket conformance: the Autobahn|Testsuite fuzzing server (`wstest`, Python 2.7 only) for
# tests/conformance/test_autobahn.py, in its own virtualenv at a fixed place. Idempotent: nothing
# happens when that wstest already runs. The test looks for it there (or where RTSYNC_WSTEST says).
set -euo pipefail
cd "$(dirname "$0")/../.."

home=/opt/rtsync-autobahn
venv="$home/venv27"
wstest="$venv/bin/wstest"
log="$home/install.log"

if [ -x "$wstest" ] && "$wstest" --autobahnversion >/dev/null 2>&1; then
  exit 0
fi

# Python 2.7: the image has it under pyenv. A pyenv shim named python2.7 can be on PATH and still
# refuse to run ("command not found" while 2.7 is not a selected version), so each candidate is run.
py27=""
for candidate in "$(command -v python2.7 || true)" \
                 "${PYENV_ROOT:-/root/.pyenv}"/versions/2.7*/bin/python2.7 \
                 /usr/local/bin/python2.7 /usr/bin/python2.7; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] \
     && "$candidate" -c 'import sys; assert sys.version_info[:2] == (2, 7)' >/dev/null 2>&1; then
    py27="$candidate"
    break
  fi
done
if [ -z "$py27" ]; then
  echo "autobahn.sh: no working Python 2.7 (python2.7 on PATH or \$PYENV_ROOT/versions/2.7*)" >&2
  exit 1
fi

# wsaccel (pulled in by autobahn[accelerate]) has no cp27 wheel and is compiled from source.
if ! command -v cc >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends gcc libc6-dev >/dev/null
fi

mkdir -p "$home"
rm -rf "$venv"
# pip's output goes to the log (this image's pip configuration makes Python 2's pip warn about every
# file:// index without the package); it is shown only when a step fails.
run() {
  if ! "$@" >>"$log" 2>&1; then
    echo "autobahn.sh: failed: $*" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}
: >"$log"
# virtualenv 20.22 dropped Python 2 targets; under 2.7, pip picks the newest release that runs there.
run "$py27" -m pip install --disable-pip-version-check 'virtualenv<20.22'
run "$py27" -m virtualenv "$venv"
# autobahntestsuite pins its own dependencies (autobahn 0.10.9, Twisted 19.10, pyOpenSSL 19.1...);
# the release the test was checked with is pinned too. ~60 s.
run "$venv/bin/pip" install --disable-pip-version-check 'autobahntestsuite==25.10.1'

run "$wstest" --autobahnversion
echo "autobahn.sh: $("$wstest" --autobahnversion 2>&1 | tr '\n' ' ')at $wstest"
