"""Start an installed `roost ui`, log in with its token, fetch the page and a vendored asset, stop it.

Usage: ui_smoke.py ROOST   (the `roost` script to run; ROOST_HOME and ROOST_BACKEND from the environment)
Exit status 0 when the page and xterm.js came back; the server is stopped by its pid either way.
"""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import sys
import urllib.request


def main(roost: str) -> int:
    server = subprocess.Popen([roost, "ui", "--no-open", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = json.loads(server.stdout.readline())["url"]
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = opener.open(url, timeout=10).read().decode()
        base = url.split("/?", 1)[0]
        asset = opener.open(f"{base}/static/vendor/xterm.js", timeout=10).read()
        if "/static/js/app.js" not in page or b"Terminal" not in asset:
            print("ui_smoke: the page or xterm.js is not what was expected", file=sys.stderr)
            return 1
        print(f"   {base}: page {len(page)} bytes, xterm.js {len(asset)} bytes")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
