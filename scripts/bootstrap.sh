#!/usr/bin/env bash
# Make sure uv exists, then create/refresh the project venv (.venv) from uv.lock.
#
# uv is looked for on PATH, in ~/.local/bin and ~/.cargo/bin, and in
# .cache/bootstrap/ (where this script installs it). When it is nowhere, it is
# installed from PyPI into .cache/bootstrap/, trying in turn:
#   1. a bootstrap venv made with `python3 -m venv` (needs ensurepip),
#   2. `python3 -m pip install --target` (needs pip; --target sidesteps PEP 668),
#   3. as root with apt: install python3-venv and python3-pip, then 1 again.
# A link to the uv found or installed is kept at .cache/bootstrap/bin/uv; the
# Makefile puts that directory first on PATH.
#
# Idempotent and quiet when there is nothing to do. Needs Python >= 3.11.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BOOT="$ROOT/.cache/bootstrap"
BIN="$BOOT/bin"
MIN_PY="3.11"
# Never let uv fetch a Python build from outside PyPI; use the system's.
export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"
# uv trusts its bundled roots by default; behind a TLS-inspecting proxy only the
# system store knows the proxy's CA. Point uv at Debian's bundle unless told otherwise.
if [ -z "${SSL_CERT_FILE:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
fi

export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

python_ok() {  # $1: interpreter; true when it is Python >= MIN_PY
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= (${MIN_PY/./, }) else 1)" 2>/dev/null
}

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 /usr/bin/python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

find_uv() {
    local candidate
    for candidate in "$BIN/uv" "$(command -v uv 2>/dev/null || true)" "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv" \
        "$BOOT/venv/bin/uv" "$BOOT/pkgs/bin/uv"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

install_with_venv() {
    local py="$1"
    rm -rf "$BOOT/venv"
    "$py" -m venv "$BOOT/venv" >/dev/null 2>&1 || { rm -rf "$BOOT/venv"; return 1; }
    "$BOOT/venv/bin/python" -m pip install --quiet --disable-pip-version-check uv || return 1
    [ -x "$BOOT/venv/bin/uv" ]
}

install_with_pip_target() {
    local py="$1"
    "$py" -m pip --version >/dev/null 2>&1 || return 1
    rm -rf "$BOOT/pkgs"
    "$py" -m pip install --quiet --disable-pip-version-check --target "$BOOT/pkgs" uv || return 1
    [ -x "$BOOT/pkgs/bin/uv" ]
}

install_python_tools_with_apt() {
    [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    say "installing python3-venv and python3-pip with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv python3-pip >/dev/null
}

install_uv() {
    local py
    py="$(find_python)" || die "no Python >= $MIN_PY found (install python3, or set PYTHON=/path/to/python3)"
    mkdir -p "$BOOT"
    say "uv not found; installing it from PyPI into .cache/bootstrap (using $py)"
    install_with_venv "$py" && return 0
    install_with_pip_target "$py" && return 0
    install_python_tools_with_apt && install_with_venv "$py" && return 0
    die "could not install uv: '$py -m venv' and '$py -m pip' both failed; install python3-venv or python3-pip"
}

main() {
    local uv
    if ! uv="$(find_uv)"; then
        install_uv
        uv="$(find_uv)" || die "uv was installed but does not run"
    fi
    mkdir -p "$BIN"
    if [ "$uv" != "$BIN/uv" ]; then
        ln -sfn "$uv" "$BIN/uv"
    fi

    cd "$ROOT"
    local py_args=()
    # Prefer a Python uv will accept without downloading one; the venv is reused once made.
    if [ ! -x "$ROOT/.venv/bin/python" ] && [ -z "${UV_PYTHON:-}" ]; then
        local py
        if py="$(find_python)"; then
            py_args=(--python "$py")
        fi
    fi
    [ -d "$ROOT/.venv" ] || say "creating .venv with uv sync (first run downloads the dependencies)"
    if [ -f uv.lock ]; then
        "$BIN/uv" sync --frozen --quiet "${py_args[@]}"
    else
        say "no uv.lock yet: resolving with 'uv sync'"
        "$BIN/uv" sync --quiet "${py_args[@]}"
    fi
}

main "$@"
