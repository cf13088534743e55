#!/usr/bin/env bash
# roost's main job in one command: run a command in a fresh debian:12 workspace.
# Run by `make demo` after scripts/bootstrap.sh; uses the venv's roost.
# ROOST_BACKEND / ROOST_HOME are honoured; by default roost picks the best
# backend this host offers: `sandbox` where bubblewrap works (the first run
# builds the debian:12 image, ~30 s), else `mock`, which isolates nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOST="$ROOT/.venv/bin/roost"
PYTHON="$ROOT/.venv/bin/python"
ENV_NAME="${DEMO_ENV:-debian:12}"
COMMAND=(git --version)

# The backend roost will pick, from `roost doctor --json` (falls back to a plain note).
backend_note() {
    if [ -n "${ROOST_BACKEND:-}" ]; then
        printf '%s (from $ROOST_BACKEND)' "$ROOST_BACKEND"
        return
    fi
    "$ROOST" doctor --json 2>/dev/null | "$PYTHON" -c '
import json, sys
name = json.load(sys.stdin).get("default_backend", "?")
print(name + (" (NOT isolated: commands run on this host)" if name == "mock" else " (isolated)"))
' 2>/dev/null || printf 'best available (see `roost doctor`)'
}

rule() { printf '%s\n' "------------------------------------------------------------------------"; }

rule
echo "roost demo"
echo "  roost creates a $ENV_NAME workspace, runs \`${COMMAND[*]}\` inside it,"
echo "  streams the output back, and deletes the workspace again."
echo "  backend: $(backend_note)"
echo
echo "  \$ roost run $ENV_NAME -- ${COMMAND[*]}"
rule

started=$(date +%s%N)
set +e
"$ROOST" run "$ENV_NAME" -- "${COMMAND[@]}" </dev/null
rc=$?
set -e
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))

rule
if [ "$rc" -eq 0 ]; then
    echo "result: ok (exit code 0, ${elapsed_ms} ms including workspace create and delete)"
else
    echo "result: FAILED (exit code $rc after ${elapsed_ms} ms); try \`$ROOST doctor\`" >&2
fi
exit "$rc"
