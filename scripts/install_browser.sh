#!/usr/bin/env bash
# Install the browser that the rnnkit serve end-to-end tests drive (tests/serve/test_browser.py):
# Debian's chromium at /usr/bin/chromium. Playwright's own browser download is not used.
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (or sudo).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "install_browser: /usr/bin/chromium is already installed: $(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown')"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get here; install Chromium so that /usr/bin/chromium exists (until then the browser tests are skipped, with that reason)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "install_browser: installing Debian's chromium package (apt-get update && apt-get install -y chromium)"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
echo "install_browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
