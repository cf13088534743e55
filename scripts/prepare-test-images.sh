#!/usr/bin/env bash
# Build, once per machine, the images the test suite shares (.cache/images by
# default, or $ROOST_IMAGES), so the timed test run never pays for a build:
#   - the environment rootfs of each env in $ROOST_PREPARE_ENVS (default: debian:12
#     for the sandbox contract tests, debian:12-python and debian:12-node for the
#     ready-env tests, so every ready env is tested in CI), when bwrap works. An env whose catalog
#     entry changed since it was built is stale and built again (a new rootfs key;
#     the old one stays for the workspaces made from it until `roost env prune`);
#   - the debian:12 guest image (kernel, initramfs, disk) for the QEMU smoke,
#     when qemu-system-x86_64 is installed;
#   - as root: the normal user the unprivileged tests run as, its venv and its own
#     debian:12 image (scripts/test-unprivileged.sh --prepare-only; skips with a reason).
# All are content-addressed and reused when already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export ROOST_IMAGES="${ROOST_IMAGES:-$PWD/.cache/images}"
run=(uv run --frozen)

if command -v bwrap >/dev/null 2>&1; then
    for env in ${ROOST_PREPARE_ENVS:-debian:12 debian:12-python debian:12-node}; do
        "${run[@]}" roost env build "$env" --if-missing
    done
else
    echo "images: no bwrap, the sandbox tests will not run" >&2
fi

if command -v qemu-system-x86_64 >/dev/null 2>&1 \
    && "${run[@]}" roost env inspect debian:12 --json | grep -q '"cached": true'; then
    "${run[@]}" python - <<'PY'
import os
from pathlib import Path

from roost.images.cache import ImageCache
from roost.images.vm.build import ensure_guest_image

image = ensure_guest_image(ImageCache(Path(os.environ["ROOST_IMAGES"])), "debian:12")
print(f"images: guest image for debian:12 ready ({image.rootfs.parent.name})")
PY
fi

if [ "$(id -u)" -eq 0 ]; then
    bash scripts/test-unprivileged.sh --prepare-only
fi
