"""`roost ui` benchmarks, in Debian's headless chromium driven by Playwright (skipped without them):

- open to first paint with 50 workspaces: from the navigation to the token URL (its redirect
  included) until the list's 50 rows are on the page, `performance.now()` in the page:
  target p50 < 1000 ms;
- keystroke echo through the browser: a key given to xterm.js (`term.input`, as typing does)
  until the shell's echo of it has moved the terminal's cursor: WebSocket, server, SDK, agent,
  PTY and back: target p50 < 50 ms;
- the server's resident memory once idle, after a browser has loaded the list and left:
  target < 60 MiB.

Each starts `roost ui --no-open --json` on a temporary home (mock backend) and stops it by its pid.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    BACKEND,
    ENV,
    Result,
    Settings,
    cli_env,
    measured,
    roost_script,
    rss_mib,
    skipped,
    summarize,
    temp_home,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PAINT_DESCRIPTION = "roost ui: token URL to the list's 50 rows on the page, headless chromium"
ECHO_DESCRIPTION = "roost ui: a key typed into xterm.js until the shell's echo moves the cursor, headless chromium"
RSS_DESCRIPTION = "roost ui: server VmRSS when idle after a browser loaded the list (5 workspaces)"
WAIT_MS = 30_000

ECHO_SCRIPT = """async ([id, n]) => {
  const term = window.__roostTerminals[id];
  const where = () => { const b = term.buffer.active; return `${b.baseY + b.cursorY}:${b.cursorX}`; };
  const samples = [];
  for (let i = 0; i < n; i++) {
    if (i % 20 === 0) term.input("\\x15", true);  // Ctrl-U: an empty line again, no wrapping
    await new Promise((r) => setTimeout(r, 20));
    const before = where();
    const began = performance.now();
    await new Promise((resolve) => {
      const sub = term.onWriteParsed(() => { if (where() !== before) { sub.dispose(); resolve(); } });
      term.input("x", true);
    });
    samples.push(performance.now() - began);
  }
  term.input("\\x15", true);
  return samples;
}"""


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (scripts/install-system-deps.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (uv sync --dev)"
    return None


@contextmanager
def _server(home: Path) -> Iterator[tuple[str, int]]:
    """(login URL, server pid) of a `roost ui` on `home`, stopped on the way out."""
    argv = [str(roost_script()), "ui", "--no-open", "--json"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=cli_env(home))
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())["url"], process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _with_workspaces(count: int, measure: Callable[[Path], Result]) -> Result:
    from roost import Roost

    with temp_home() as home:
        with Roost(home=home, backend=BACKEND) as roost:
            for _ in range(count):
                roost.create_workspace(ENV, ephemeral=False)
        return measure(home)


def first_paint(settings: Settings) -> Result:
    why = _missing()
    if why:
        return skipped(PAINT_DESCRIPTION, why)

    def measure(home: Path) -> Result:
        samples: list[float] = []
        with _server(home) as (url, _pid), _browser() as browser:
            for _ in range(settings.n(10, 2)):
                context = browser.new_context()
                page = context.new_page()
                page.goto(url, wait_until="commit")
                page.wait_for_function(
                    "() => document.querySelectorAll('#workspace-rows tr').length >= 50", timeout=WAIT_MS
                )
                samples.append(float(page.evaluate("performance.now()")))
                context.close()
        return measured(PAINT_DESCRIPTION, "ms", summarize(samples, 1), "p50", "<", 1000.0, workspaces=50)

    return _with_workspaces(50, measure)


def keystroke_echo(settings: Settings) -> Result:
    why = _missing()
    if why:
        return skipped(ECHO_DESCRIPTION, why)

    def measure(home: Path) -> Result:
        from roost import Roost

        with Roost(home=home, backend=BACKEND) as roost:
            ws_id = roost.list_workspaces()[0].id
        with _server(home) as (url, _pid), _browser() as browser:
            page = browser.new_context().new_page()
            page.goto(url)
            page.goto(f"{url.split('/?')[0]}/#/ws/{ws_id}/terminal")
            page.get_by_test_id("new-shell").click()
            box = page.locator(".xterm-box").first
            box.wait_for(timeout=WAIT_MS)
            shell_id = box.get_attribute("data-shell")
            page.wait_for_function(
                "(id) => { const b = window.__roostTerminals[id].buffer.active;"
                " return b.getLine(b.baseY + b.cursorY).translateToString(true).trimEnd().endsWith('#'); }",
                arg=shell_id,
                timeout=WAIT_MS,
            )
            samples = [float(s) for s in page.evaluate(ECHO_SCRIPT, [shell_id, settings.n(200, 20)])]
        return measured(ECHO_DESCRIPTION, "ms", summarize(samples, 2), "p50", "<", 50.0)

    return _with_workspaces(1, measure)


def idle_rss(settings: Settings) -> Result:
    why = _missing()
    if why:
        return skipped(RSS_DESCRIPTION, why)

    def measure(home: Path) -> Result:
        with _server(home) as (url, pid), _browser() as browser:
            page = browser.new_context().new_page()
            page.goto(url)
            page.wait_for_function("() => document.querySelectorAll('#workspace-rows tr').length >= 5", timeout=WAIT_MS)
            page.context.close()
            time.sleep(settings.n(3, 1))  # idle: the streams it served have ended
            mib = rss_mib(pid)
        return measured(RSS_DESCRIPTION, "MiB", {"rss_mib": round(mib, 1)}, "rss_mib", "<", 60.0)

    return _with_workspaces(5, measure)


def benchmarks() -> dict[str, tuple[str, Callable[[Settings], Result]]]:
    """Every dashboard benchmark by name, for `benchmarks.__main__.BENCHMARKS`."""
    return {
        "ui_first_paint_50_workspaces": (PAINT_DESCRIPTION, first_paint),
        "ui_keystroke_echo_browser": (ECHO_DESCRIPTION, keystroke_echo),
        "ui_server_idle_rss": (RSS_DESCRIPTION, idle_rss),
    }
