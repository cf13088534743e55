"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, one browser
for the module, one `roost ui` server on the mock backend, the SDK changing things beside it.

With ROOST_UI_SCREENSHOTS=1 the tests also write the screenshots docs/ui.md shows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_server import UiServer

from helpers import wait_until
from roost.client import Roost, Workspace

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
# Every wait for the page has this deadline (ms); nothing here takes more than a second normally.
WAIT_MS = 10_000

playwright_sync = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (scripts/install-system-deps.sh)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402


@pytest.fixture(scope="module")
def roost(ui: UiServer) -> Iterator[Roost]:
    with Roost(home=ui.home, backend="mock") as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, ui: UiServer) -> Iterator[Page]:
    """A fresh browser context logged in with the token URL."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    opened.goto(ui.login_url)
    yield opened
    context.close()


@pytest.fixture
def workspace(roost: Roost) -> Iterator[Workspace]:
    made = roost.create_workspace("debian:12", ephemeral=True)
    with made:
        yield made


def shot(page: Page, name: str) -> None:
    if os.environ.get("ROOST_UI_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def wait_for_screen(page: Page, shell_id: str, pattern: str) -> None:
    """Wait until a line of the browser's terminal for `shell_id` (xterm.js's buffer) matches `pattern`."""
    try:
        page.wait_for_function(
            """([id, pattern]) => { const b = window.__roostTerminals[id].buffer.active; const re = new RegExp(pattern);
                for (let i = 0; i < b.length; i++) if (re.test(b.getLine(i).translateToString(true))) return true;
                return false; }""",
            arg=[shell_id, pattern],
        )
    except PlaywrightTimeout:
        screen = page.evaluate(
            """(id) => { const b = window.__roostTerminals[id].buffer.active; const out = [];
                for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true)); return out; }""",
            shell_id,
        )
        raise AssertionError(f"no line matches {pattern!r} on the screen: {screen}") from None


def test_login_strips_the_token_and_keeps_it_in_an_httponly_strict_cookie(page: Page, ui: UiServer) -> None:
    assert page.url == f"{ui.base}/"
    cookies = page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [(f"roost_ui_{ui.port}", True, "Strict")]
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it


def test_a_workspace_created_from_the_sdk_appears_without_a_reload(page: Page, roost: Roost) -> None:
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate("window.__sameDocument = true")
    made = roost.create_workspace("debian:12", name="from-the-sdk", labels={"team": "web"}, ephemeral=False)
    row = page.locator(f'tr[data-id="{made.id}"]')
    expect(row).to_contain_text("from-the-sdk")
    expect(row).to_contain_text("NOT isolated")
    expect(row).to_contain_text("team=web")
    shot(page, "workspaces")
    page.get_by_test_id("filter-label").fill("team=api")
    expect(row).to_be_hidden()
    page.get_by_test_id("filter-label").fill("team=web")
    expect(row).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True


def test_a_fork_made_from_the_sdk_appears_with_a_link_to_its_parent(page: Page, roost: Roost) -> None:
    parent = roost.create_workspace("debian:12", name="the-parent", ephemeral=False)
    (child,) = parent.fork(name_prefix="the-child")
    row = page.locator(f'tr[data-id="{child.id}"]')
    expect(row).to_contain_text("the-child-1")
    row.locator("td.parent a").click()
    expect(page).to_have_url(re.compile(f"#/ws/{parent.id}$"))


def test_deleting_from_the_list_asks_first_then_the_row_goes(page: Page, roost: Roost) -> None:
    made = roost.create_workspace("debian:12", name="to-delete", ephemeral=False)
    row = page.locator(f'tr[data-id="{made.id}"]')
    row.get_by_test_id("delete").click()
    page.get_by_test_id("confirm-no").click()
    expect(row).to_be_visible()
    row.get_by_test_id("delete").click()
    page.get_by_test_id("confirm-yes").click()
    expect(row).to_have_count(0)
    assert made.id not in [info.id for info in roost.list_workspaces()]


def test_a_terminal_echoes_resizes_and_shares_its_shell_with_the_sdk(
    page: Page, ui: UiServer, workspace: Workspace
) -> None:
    page.goto(f"{ui.base}/#/ws/{workspace.id}/terminal")
    page.get_by_test_id("new-shell").click()
    box = page.locator(".xterm-box").first
    expect(box).to_be_visible()
    shell_id = str(box.get_attribute("data-shell"))
    box.click()
    page.keyboard.type("echo hel''lo\n")
    wait_for_screen(page, shell_id, "^hello$")

    size = "(id) => [window.__roostTerminals[id].cols, window.__roostTerminals[id].rows]"
    before = page.evaluate(size, shell_id)
    page.set_viewport_size({"width": 900, "height": 600})
    page.wait_for_function(f"([id, before]) => ({size})(id).join() !== before.join()", arg=[shell_id, before])
    cols, rows = page.evaluate(size, shell_id)
    page.keyboard.type("stty size\n")
    wait_for_screen(page, shell_id, f"^{rows} {cols}$")

    workspace.shells.write(shell_id, "echo from-the-$((1+1))-sdk")
    wait_for_screen(page, shell_id, "^from-the-2-sdk$")
    wait_for_screen(page, shell_id, "# $")  # the prompt is back: what is typed now goes to readline
    page.keyboard.type("sleep 613\n")
    wait_until(lambda: workspace.exec("pgrep -fx 'sleep 613'").exit_code == 0, timeout=10, what="sleep to start")
    page.keyboard.press("Control+c")
    wait_for_screen(page, shell_id, "# $")
    page.keyboard.type("echo after-$((3*3))\n")
    wait_for_screen(page, shell_id, "^after-9$")
    shot(page, "terminal")


def test_a_service_log_line_arrives_live(page: Page, ui: UiServer, workspace: Workspace) -> None:
    workspace.services.start("ticker", "echo first-line; sleep 1; echo second-line; exec sleep 600")
    page.goto(f"{ui.base}/#/ws/{workspace.id}/services")
    page.locator('tr[data-service="ticker"]').get_by_test_id("service-log-open").click()
    log = page.get_by_test_id("service-log")
    expect(log).to_contain_text("first-line")
    expect(log).to_contain_text("second-line")
    workspace.exec("true")  # nothing: the log stays open while the workspace works
    shot(page, "services")


def test_a_change_shows_in_the_diff_and_reset_to_a_snapshot_empties_it(
    page: Page, ui: UiServer, workspace: Workspace
) -> None:
    workspace.snapshots.create("clean")
    workspace.files.write("/workspace/hello.py", "def greet(name):\n    return f'hello {name}'\n")
    page.goto(f"{ui.base}/#/ws/{workspace.id}/changes")
    expect(page.get_by_test_id("diff-view")).to_contain_text("hello.py")
    expect(page.get_by_test_id("diff-summary")).to_contain_text("1 added")
    expect(page.locator(".d2h-file-side-diff").first).to_be_visible()  # side by side
    expect(page.locator(".d2h-code-side-line .hljs-keyword").first).to_have_text("def")  # highlighted
    shot(page, "changes")

    page.locator('nav.tabs a[data-tab="snapshots"]').click()
    page.locator('tr[data-snapshot="clean"]').get_by_test_id("reset").click()
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("reset-result")).to_contain_text("reset to clean")
    page.locator('nav.tabs a[data-tab="changes"]').click()
    page.get_by_test_id("diff-against").select_option("clean")
    expect(page.get_by_test_id("diff-summary")).to_have_text("no changes")
    expect(page.get_by_test_id("diff-view")).to_be_empty()


def test_the_workspace_page_shows_status_history_with_outputs_and_files(
    page: Page, ui: UiServer, workspace: Workspace
) -> None:
    workspace.files.write("/workspace/notes/todo.txt", "water the plants\n")
    page.goto(f"{ui.base}/#/ws/{workspace.id}/overview")
    expect(page.get_by_test_id("ws-state")).to_have_text("running")
    expect(page.locator("table.kv")).to_contain_text("process tree")  # usage, as mock's stats count it
    expect(page.locator("table.kv tr", has_text="memory")).to_contain_text("MiB")
    shot(page, "overview")

    page.locator('nav.tabs a[data-tab="history"]').click()
    workspace.exec("echo out-$((2*21)); echo err-line >&2")
    page.locator("tr.clickable", has_text="echo out-").click()  # arrives with the next poll: no reload
    expect(page.locator("pre.stdout")).to_have_text("out-42\n")
    expect(page.locator("pre.stderr")).to_have_text("err-line\n")

    page.locator('nav.tabs a[data-tab="files"]').click()
    page.locator('tr[data-name="notes"]').click()
    page.locator('tr[data-name="todo.txt"]').click()
    expect(page.locator("pre.file-text")).to_have_text("water the plants\n")
    with page.expect_download() as download:
        page.get_by_role("link", name="download").click()
    assert Path(download.value.path()).read_text() == "water the plants\n"
    shot(page, "files")

    page.locator('nav.tabs a[data-tab="network"]').click()
    expect(page.get_by_test_id("network-policy")).to_contain_text("policy off")
