#!/usr/bin/env bash
# Run the sandbox contract and security tests as a normal user (CI runs this as root, after `make test`).
#
# What it prepares first (idempotent; quick once done):
#   - the user $ROOST_TEST_USER (default roost-unpriv), with 65536 subordinate uids and gids
#     (useradd gives them; an existing user lacking them gets a free block). The user stays
#     between runs; its workspaces never do;
#   - a venv from Debian's /usr/bin/python3 at .cache/unprivileged/venv, with uv.lock's pins and
#     roost installed from this checkout (the project's .venv interpreter may live under root's
#     home, which other users cannot reach). Root owns it; the user only reads it;
#   - that user's own image cache at .cache/unprivileged/images, with debian:12 built AS the user
#     (mmdebstrap in unshare mode), so the rootfs belongs to the user as it would for anyone
#     running roost without root. Built once per machine, like the root suite's .cache/images.
#
# Then pytest runs as the user on tests/contract and tests/security (the sandbox's parameter;
# the mock backend's runs are left to the root suite), the image build's unprivileged unpack
# test, and one registry round trip (push the user's env, pull it back by tag and digest, run
# git in it: OCI pulls as a normal user). Extra arguments go to pytest.
#
# Usage: scripts/test-unprivileged.sh [--prepare-only] [PYTEST_ARGS...]
# Skips with one line saying why (exit 0) where this cannot run: not root, no useradd/runuser,
# no bwrap, no Debian python3, user namespaces off, or a checkout the user cannot read.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
USER_NAME="${ROOST_TEST_USER:-roost-unpriv}"
STATE="$REPO/.cache/unprivileged"
VENV="$STATE/venv"
IMAGES="$STATE/images"
SYSTEM_PYTHON=/usr/bin/python3
GUEST_PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin

say() { printf 'unprivileged: %s\n' "$*" >&2; }
skip() { say "skipping: $*"; exit 0; }

prepare_only=0
if [ "${1:-}" = "--prepare-only" ]; then
    prepare_only=1
    shift
fi

[ "$(id -u)" -eq 0 ] || skip "needs root to create $USER_NAME and run as it (as a normal user, \`make test\` already runs unprivileged)"
for tool in useradd usermod runuser bwrap mmdebstrap newuidmap uv; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (scripts/install-system-deps.sh installs the Debian ones; uv: scripts/bootstrap.sh)"
done
[ -x "$SYSTEM_PYTHON" ] || skip "no Debian python3 at $SYSTEM_PYTHON"

as_user() {  # run "$@" as the test user with a clean environment
    runuser -u "$USER_NAME" -- env -i HOME="$USER_HOME" PATH="$GUEST_PATH" LANG=C.UTF-8 \
        ROOST_IMAGES="$IMAGES" ${ROOST_DEBIAN_MIRROR:+ROOST_DEBIAN_MIRROR="$ROOST_DEBIAN_MIRROR"} "$@"
}

# --- the venv (first: the user's subordinate ids are computed with roost itself) ----------------
mkdir -p "$STATE"
chmod 0755 "$STATE"
uv venv -q --allow-existing --python "$SYSTEM_PYTHON" "$VENV"
uv export -q --frozen --format requirements-txt --no-emit-project -o "$STATE/requirements.txt"
uv pip install -q --python "$VENV/bin/python" -r "$STATE/requirements.txt"
uv pip install -q --python "$VENV/bin/python" --no-deps --reinstall-package roost "$REPO"
chmod -R a+rX "$VENV"

# --- the user, with subordinate ids ---------------------------------------------------------------
if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --comment "roost tests as a normal user" "$USER_NAME"
    say "created user $USER_NAME"
fi
USER_HOME="$(getent passwd "$USER_NAME" | cut -d: -f6)"
missing_fix="$("$VENV/bin/python" -c '
import sys
from roost.userns import subordinate_ids, user_names
import pwd
check = subordinate_ids(pwd.getpwnam(sys.argv[1]).pw_uid)
print("" if check.ok else check.fix.split(" (as root)")[0])
' "$USER_NAME")"
if [ -n "$missing_fix" ]; then
    say "giving $USER_NAME subordinate ids: $missing_fix"
    $missing_fix
fi
as_user test -r "$REPO/tests/conftest.py" -a -x "$VENV/bin/python" \
    || skip "$USER_NAME cannot reach $REPO (a parent directory is private): clone where other users can read"
as_user unshare --user --map-root-user true 2>/dev/null \
    || skip "$USER_NAME cannot create user namespaces (see \`roost doctor\` as that user)"

# --- the user's image cache -----------------------------------------------------------------------
install -d -o "$USER_NAME" -g "$(id -gn "$USER_NAME")" -m 0700 "$IMAGES"
# Quick when cached; else mmdebstrap in unshare mode, as the user (once per machine).
as_user "$VENV/bin/roost" env build debian:12 --if-missing >&2
[ "$prepare_only" -eq 1 ] && exit 0

# --- the tests, as the user -----------------------------------------------------------------------
selection=(
    tests/contract
    tests/unit/test_image_build.py
    tests/integration/test_env_images.py::test_a_built_env_pushed_to_a_registry_comes_back_by_tag_and_by_digest_and_runs_git
)
[ -d tests/security ] && selection+=(tests/security)
say "running ${selection[*]} as $USER_NAME (sandbox backend)"
as_user PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -p no:cacheprovider -q -n 2 \
    -k "not mock" "${selection[@]}" "$@"
