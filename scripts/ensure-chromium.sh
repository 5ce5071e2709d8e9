#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/e2e) when it is missing.
# Quiet; exits 0 at once when chromium is already on the PATH. Playwright drives this
# binary (/usr/bin/chromium); it never downloads a browser of its own.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing after apt-get install" >&2; exit 1; }
