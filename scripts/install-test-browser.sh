#!/usr/bin/env bash
# Install Debian's Chromium for the end-to-end browser test (tests/test_browser.py).
# Idempotent and quiet: does nothing when /usr/bin/chromium is already there; apt's output is shown only on failure.
# Only Debian's package is used: no browser download from anywhere else.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-test-browser: apt-get install chromium failed (output above)" >&2
  exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "install-test-browser: /usr/bin/chromium is still missing after apt-get install chromium" >&2
  exit 1
fi
