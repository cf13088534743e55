#!/usr/bin/env bash
# Install the Debian packages roost's tests and demo need, only those missing.
#
# To need another package, add one line to PACKAGES below. `apt-get update`
# runs once, and only when something is missing. Without root (and without
# passwordless sudo) missing packages are reported and the script goes on:
# the tests that need them skip with a reason.
#
# Usage: scripts/install-system-deps.sh [--check]   (--check: report only, exit 1 if any is missing)
set -euo pipefail

PACKAGES=(
    make           # the entry points (make demo, make test, ...)
    git            # the demo runs `git --version`; patch tests compare against git
    ca-certificates  # uv and pip talk to PyPI over TLS
    python3        # Debian 12's 3.11 is enough for uv and roost
    bubblewrap     # the sandbox backend
    libseccomp2    # the sandbox's seccomp filter is compiled by libseccomp (through pyseccomp)
    util-linux     # unshare: the sandbox's private mount namespace; runuser and setpriv for the unprivileged tests
    uidmap         # newuidmap/newgidmap: a normal user's sandboxes and image builds map subordinate ids
    mmdebstrap     # building environment images from the Debian mirror
    e2fsprogs      # mkfs.ext4 -d: guest disk images; debugfs, e2fsck, resize2fs: workspace disk tools
    qemu-system-x86  # the QEMU smoke: boots the guest image with software emulation
    cpio           # checks roost's initramfs writer against a real cpio
    lz4            # checks the pure-Python LZ4 kernel decoder against the real one
    nftables       # nft: the network gateway's TPROXY rules inside a workspace's network namespace
    iproute2       # ip: addresses and routes in a workspace's namespace; the network tests' namespaces and veths
    busybox-static # an image with no python3 and no libc for the bundle tests (tests/integration/oci_images.py)
    musl           # a musl libc for the musl-based test image
    chromium       # the dashboard's browser tests (Playwright drives Debian's chromium; no browser downloads)
)

say() { printf 'system-deps: %s\n' "$*" >&2; }

installed() {  # $1: package name
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

main() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian-like system (no dpkg-query); skipping: ${PACKAGES[*]}"
        return 0
    fi
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "${1:-}" = "--check" ]; then
        say "missing: ${missing[*]}"
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            say "missing ${missing[*]} and not root: install them with apt-get; tests that need them will skip"
            return 0
        fi
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

main "$@"
