#!/usr/bin/env bash
# The admin page's browser tests drive a real Chromium through Selenium: this makes sure
# Debian's chromium and chromium-driver are installed (the packages, when running as root),
# otherwise a clear message. The tests fail, not skip, without them.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Chromium and its driver (Debian packages) for the browser tests..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  }
else
  echo "chromium and chromedriver not found: install the 'chromium' and 'chromium-driver' packages" >&2
  exit 1
fi
