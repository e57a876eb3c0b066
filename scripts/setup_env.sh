#!/usr/bin/env bash
# Creates .venv (when missing) and installs everything the package needs on Debian 12 / Python 3.11.
# Used by `make demo` and `make test`; safe to run again (pip skips what is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

# open3d's wheel links against libusb-1.0 (a Debian package, not a pip one).
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] installing Debian package libusb-1.0-0 (needed by open3d)"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libusb-1.0-0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | { grep -v "is ignored: it is neither" || true; }
echo "[setup] installing requirements.txt (first run: a few minutes, torch is large)"
"$VENV/bin/python" -m pip install -q -r requirements.txt 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
echo "[setup] done: $("$VENV/bin/python" -c 'import torch, rclpy; print("torch", torch.__version__, "+ rclpy ok")')"
