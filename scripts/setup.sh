#!/usr/bin/env bash
# Create or update .venv with everything faceid needs. Quick (a stamp check) when .venv is
# already in step with this script and pyproject.toml.
#   scripts/setup.sh          runtime
#   scripts/setup.sh --test   runtime + test-only tools (pytest, dlib-bin as the reference)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

PY=${PYTHON:-python3}
stamp_src=$(cat scripts/setup.sh pyproject.toml | sha256sum | cut -c1-16)
stamp=".venv/.faceid-setup-$stamp_src-$want_test"
if [ -f "$stamp" ] || { [ $want_test = 0 ] && [ -f ".venv/.faceid-setup-$stamp_src-1" ]; }; then
  exit 0
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=".venv/bin/python -m pip"
$pip install -q --upgrade pip
# torch + torchvision: this exact pair lies on the machines' local wheel cache (a CUDA build
# that runs on the CPU); PyPI's torchvision does not import beside the CPU-only torch 2.13.
$pip install -q torch==2.14.1 torchvision==0.29.1
if [ $want_test = 1 ]; then
  $pip install -q -e '.[test]'
else
  $pip install -q -e .
fi
# facenet-pytorch pins torch<2.3, numpy<2, Pillow<10.3; its code runs fine on current ones.
# Installed last and without dependencies, so pip neither downgrades nor complains.
$pip install -q --no-deps facenet-pytorch==2.6.0
rm -f .venv/.faceid-setup-*
touch "$stamp"
