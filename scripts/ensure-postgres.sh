#!/usr/bin/env bash
# The store tests run against a real PostgreSQL server that the test fixture starts in a
# temporary folder (tests/pg.py). This makes sure the server binaries are installed: the
# Debian package when running as root, otherwise a clear message.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing the PostgreSQL server (Debian package) for the store tests..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
else
  echo "PostgreSQL server binaries not found: install the 'postgresql' package" >&2
  exit 1
fi
