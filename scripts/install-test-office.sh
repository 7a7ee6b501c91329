#!/usr/bin/env bash
# Install Debian's LibreOffice Calc for the spreadsheet round-trip test (tests/test_office_roundtrip.py).
# Idempotent and quiet: does nothing when `soffice` is already on PATH; apt's output is shown only on failure.
# Only Debian's package is used: nothing is downloaded from anywhere else.
set -euo pipefail

if command -v soffice >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends libreoffice-calc; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-test-office: apt-get install libreoffice-calc failed (output above)" >&2
  exit 1
fi

if ! command -v soffice >/dev/null 2>&1; then
  echo "install-test-office: soffice is still missing after apt-get install libreoffice-calc" >&2
  exit 1
fi
