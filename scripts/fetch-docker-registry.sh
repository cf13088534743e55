#!/usr/bin/env bash
# Make Debian's `docker-registry` binary available without installing the package.
#
# Installing the package would start a system service listening on port 5000
# on every interface; the tests only want the binary, run on 127.0.0.1 with a
# config of their own. So: `apt-get download` the .deb into a cache dir,
# unpack it there with `dpkg-deb -x`, and print the binary's path on stdout.
#
# Idempotent: an already unpacked binary is printed straight away. `apt-get
# update` runs only when the first download attempt fails (stale lists).
#
# Usage: scripts/fetch-docker-registry.sh [CACHE_DIR]
#   CACHE_DIR defaults to $ROOST_REGISTRY_CACHE, else <repo>/.cache/docker-registry.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${1:-${ROOST_REGISTRY_CACHE:-$REPO/.cache/docker-registry}}"
BINARY="$CACHE_DIR/root/usr/bin/docker-registry"

say() { printf 'fetch-docker-registry: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

download() {  # into the current directory; apt-get download needs no root
    apt-get download -q docker-registry >&2
}

main() {
    if [ -x "$BINARY" ]; then
        printf '%s\n' "$BINARY"
        return 0
    fi
    for tool in apt-get dpkg-deb; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            say "no $tool here (not a Debian-like system); cannot fetch docker-registry"
            return 1
        fi
    done
    mkdir -p "$CACHE_DIR/debs"
    local deb
    deb="$(find "$CACHE_DIR/debs" -maxdepth 1 -name 'docker-registry_*.deb' -print -quit)"
    if [ -z "$deb" ]; then
        if ! (cd "$CACHE_DIR/debs" && download); then
            say "download failed; running apt-get update once and retrying"
            if ! as_root apt-get update -q >&2; then
                say "apt-get update needs root (or passwordless sudo); cannot refresh package lists"
                return 1
            fi
            (cd "$CACHE_DIR/debs" && download)
        fi
        deb="$(find "$CACHE_DIR/debs" -maxdepth 1 -name 'docker-registry_*.deb' -print -quit)"
    fi
    if [ -z "$deb" ]; then
        say "apt-get download left no docker-registry_*.deb in $CACHE_DIR/debs"
        return 1
    fi
    # Unpack beside the final place and rename, so a half-unpacked tree is never used.
    local staging="$CACHE_DIR/root.partial.$$"
    rm -rf "$staging"
    dpkg-deb -x "$deb" "$staging"
    if [ ! -x "$staging/usr/bin/docker-registry" ]; then
        rm -rf "$staging"
        say "$deb holds no usr/bin/docker-registry"
        return 1
    fi
    rm -rf "$CACHE_DIR/root"
    mv "$staging" "$CACHE_DIR/root"
    printf '%s\n' "$BINARY"
}

main "$@"
