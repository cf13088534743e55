#!/usr/bin/env bash
# Build the wheel and sdist, install the wheel into a fresh venv, and smoke the
# INSTALLED roost from outside the source tree:
#   roost --version; roost doctor --json (must parse); a mock-backend
#   `roost run ... -- echo dist-ok`; and the MCP server's tool list over stdio
#   through the official mcp client (must include workspace_exec).
# Needs uv on PATH (make dist-check runs scripts/bootstrap.sh first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/roost-dist-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

step() { printf '== dist-check: %s\n' "$*"; }
fail() { printf 'dist-check: FAILED: %s\n' "$*" >&2; exit 1; }

step "uv build (sdist, then a wheel built from that sdist)"
uv build --quiet --project "$ROOT" --out-dir "$WORK/dist"
shopt -s nullglob
wheels=("$WORK"/dist/roost-*.whl)
sdists=("$WORK"/dist/roost-*.tar.gz)
[ "${#wheels[@]}" -eq 1 ] || fail "expected one wheel in dist/, found ${#wheels[@]}"
[ "${#sdists[@]}" -eq 1 ] || fail "expected one sdist in dist/, found ${#sdists[@]}"
printf '   %s\n   %s\n' "$(basename "${wheels[0]}")" "$(basename "${sdists[0]}")"

step "wheel contents"
python_for_venv="$("$ROOT/.venv/bin/python" -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3)"
"$python_for_venv" - "${wheels[0]}" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["roost/__init__.py", "roost/py.typed", "roost/agent/__main__.py", "roost/protocol/frames.py", "roost/cli/main.py",
          "roost/ui/static/index.html", "roost/ui/static/vendor/xterm.js", "roost/ui/static/vendor/diff2html-ui-slim.min.js"]
missing = [n for n in needed if n not in names]
if missing:
    sys.exit(f"dist-check: the wheel lacks {missing}")
print(f"   {len(names)} files, including {', '.join(needed)}")
EOF

step "fresh venv with the wheel installed"
uv venv --quiet --python "$python_for_venv" "$WORK/venv"
uv pip install --quiet --python "$WORK/venv/bin/python" "${wheels[0]}"
ROOST="$WORK/venv/bin/roost"
[ -x "$ROOST" ] || fail "the wheel installed no roost script"

# From here on, run outside the source tree so nothing can import src/ by accident.
cd "$WORK"
where="$("$WORK/venv/bin/python" -c 'import roost, os; print(os.path.dirname(roost.__file__))')"
case "$where" in
    "$WORK/venv/"*) printf '   roost imported from %s\n' "$where" ;;
    *) fail "roost was imported from $where, not from the fresh venv" ;;
esac

export ROOST_HOME="$WORK/home"
mkdir -p "$ROOST_HOME"

step "roost --version"
version="$("$ROOST" --version)" || fail "roost --version exited $?"
printf '   %s\n' "$version"
case "$version" in roost\ *) ;; *) fail "unexpected --version output: $version" ;; esac

step "roost doctor --json"
"$ROOST" doctor --json >"$WORK/doctor.json" || fail "roost doctor --json exited $?"
"$WORK/venv/bin/python" - "$WORK/doctor.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
if not isinstance(report, dict):
    sys.exit("dist-check: doctor --json is not a JSON object")
print(f"   valid JSON; default backend: {report.get('default_backend')!r}")
EOF

step "ROOST_BACKEND=mock roost run debian:12 -- echo dist-ok"
out="$(ROOST_BACKEND=mock ROOST_HOME="$(mktemp -d "$WORK/run-home.XXXXXX")" "$ROOST" run debian:12 -- echo dist-ok </dev/null)" \
    || fail "roost run exited $?"
printf '   %s\n' "$out"
grep -qx 'dist-ok' <<<"$out" || fail "roost run did not print dist-ok"

step "MCP: roost mcp serve --profile core over stdio, tools/list"
tools="$(ROOST_BACKEND=mock "$WORK/venv/bin/python" "$ROOT/scripts/mcp_list_tools.py" --require workspace_exec --timeout 60)" \
    || fail "MCP tool listing failed (see above)"
printf '   %s\n' $tools

step "roost ui --no-open --json: the page and its vendored assets from the installed wheel"
ROOST_BACKEND=mock ROOST_HOME="$(mktemp -d "$WORK/ui-home.XXXXXX")" "$WORK/venv/bin/python" "$ROOT/scripts/ui_smoke.py" "$ROOST" \
    || fail "the installed dashboard did not serve its page (see above)"

step "OK"
