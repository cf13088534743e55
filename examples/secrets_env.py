"""An API token given to one command only, and never shown: the secret store, env and file modes, redaction.

    uv run python examples/secrets_env.py

The token is stored encrypted in the host's store, attached to a workspace
by name, and handed to the commands that ask for it, as a variable or as a
0400 file on a tmpfs that goes when the command ends. Every output shows it
as `[redacted:API_TOKEN]`, and a command that does not ask never has it.
State goes to a temporary ROOST_HOME, so the example leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
import tempfile
from pathlib import Path

from roost import Roost, RoostError


def main() -> int:
    token = "demo-" + secrets.token_hex(16)  # stands in for a real API token
    with tempfile.TemporaryDirectory(prefix="roost-secrets-") as scratch, Roost(home=Path(scratch, "home")) as roost:
        stored = roost.secrets.set("API_TOKEN", token, modes=["env", "file"])
        print(f"stored {stored.name} (modes {', '.join(stored.modes)}), set at {stored.set_at}")

        with roost.create_workspace("debian:12", secrets=["API_TOKEN"]) as ws:
            shown = ws.exec('echo "token is $API_TOKEN"', secret_env=["API_TOKEN"])
            print(f"the command printed: {shown.stdout.strip()}")

            digest = ws.exec('printf %s "$API_TOKEN" | sha256sum', secret_env=["API_TOKEN"]).stdout.split()[0]
            same = "match" if digest == hashlib.sha256(token.encode()).hexdigest() else "differs"
            print(f"inside, the variable holds the real value: {same}")

            filed = ws.exec('ls -l "$ROOST_SECRET_FILE_API_TOKEN" | cut -c1-10', secret_files=["API_TOKEN"])
            print(f"file mode: {filed.stdout.strip()} (removed when the command ends)")

            other = ws.exec('echo "${API_TOKEN:-not set}"')
            print(f"a command that did not ask: {other.stdout.strip()}")

            try:
                ws.exec("true", secret_env=["OTHER"])
            except RoostError as exc:
                print(f"an unattached secret: {exc.code}")
        print(f"workspaces left: {len(roost.list_workspaces())}")
    print("secrets example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
