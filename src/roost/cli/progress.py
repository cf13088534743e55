"""Progress for long work (image builds and pulls): a rich bar on a terminal,
one line per step when stderr is not a terminal, nothing at all with --json.

Imports: cli.output, rich (lazily) and the standard library.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from roost.cli.output import shown

ProgressFn = Callable[[str, int, int], None]


def _line_reporter() -> ProgressFn:
    last: list[str] = [""]

    def report(step: str, done: int, total: int) -> None:
        if step.startswith("sha256:"):
            return  # per-blob byte counts: too chatty for a log
        if step != last[0]:
            last[0] = step
            sys.stderr.write(f"roost: [{done}/{total}] {shown(step)}\n")
            sys.stderr.flush()

    return report


@contextmanager
def progress_for(as_json: bool, title: str) -> Iterator[ProgressFn | None]:
    """Yield a progress callback suited to where output goes (None under --json)."""
    if as_json:
        yield None
        return
    if not sys.stderr.isatty():
        yield _line_reporter()
        return
    from rich.markup import escape
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    title = escape(shown(title))  # the title names what the user typed: neither markup nor control codes

    columns: list[Any] = [
        TextColumn("[bold]{task.fields[title]}"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, transient=True, console=None) as bar:
        task = bar.add_task("starting", total=None, title=title)
        downloads: dict[str, Any] = {}

        def report(step: str, done: int, total: int) -> None:
            if step.startswith("sha256:"):
                if step not in downloads:
                    downloads[step] = bar.add_task(
                        step[:19], total=total or None, title="pull", columns=[DownloadColumn()]
                    )
                bar.update(downloads[step], completed=done)
                return
            bar.update(task, description=step, completed=done, total=total or None)

        yield report
