#!/usr/bin/env bash
# Installs what Hearth needs into ./.venv. With --test, also the test tools and Chromium.
#   ./setup.sh          runtime: Python packages (compiles llama.cpp once, ~10 min on 2 cores)
#   ./setup.sh --test   runtime + pytest, Playwright and Debian/Ubuntu's chromium package
set -euo pipefail
cd "$(dirname "$0")"

with_tests=false
[[ "${1:-}" == "--test" ]] && with_tests=true
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1;33m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root for: $*"; return 1
  fi
}

apt_install() {
  # Installs only what is missing, so a warm machine skips apt entirely.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  ((${#missing[@]})) || return 0
  say "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null || {
  say "Hearth needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)."
  exit 1
}

if command -v apt-get >/dev/null; then
  packages=(build-essential)  # llama-cpp-python compiles llama.cpp with gcc/g++
  # Debian's python3 has the venv module but not ensurepip until python3-venv is installed.
  "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
  $with_tests && packages+=(chromium)
  apt_install "${packages[@]}"
elif $with_tests && [[ ! -x /usr/bin/chromium ]]; then
  say "No apt-get: install Chromium yourself and set HEARTH_CHROMIUM=/path/to/chromium."
fi

[[ -x .venv/bin/python ]] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
.venv/bin/python -m pip install -q --upgrade pip
requirements=requirements.txt
$with_tests && requirements=requirements-dev.txt
say "pip install -r $requirements (the first run compiles llama.cpp: about 10 minutes)"
.venv/bin/python -m pip install -q -r "$requirements"
# Hearth itself, editable: `backend` and `ui` import from this checkout wherever you run.
.venv/bin/python -m pip install -q --no-deps -e .
say "ready"
