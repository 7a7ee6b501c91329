#!/usr/bin/env bash
# Install Debian packages that the end-to-end tests drive (Chromium, LibreOffice Calc, PostgreSQL).
# Usage: scripts/install-test-packages.sh COMMAND PACKAGE...   installs PACKAGE... unless COMMAND is found
# (on PATH, or as an absolute path). Idempotent and quiet: apt's output is shown only on failure.
# Only Debian's packages are used: nothing is downloaded from anywhere else.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 COMMAND PACKAGE..." >&2
  exit 2
fi
command="$1"
shift

have() { [ -x "$command" ] || command -v "$command" >/dev/null 2>&1; }
have && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-test-packages: apt-get install $* failed (output above)" >&2
  exit 1
fi
if ! have; then
  echo "install-test-packages: $command is still missing after apt-get install $*" >&2
  exit 1
fi
