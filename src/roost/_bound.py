"""One workspace of one engine, as every SDK handle of it holds it (`BoundWorkspace`).

Imports: store records, workspace.engine and the standard library.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from roost.store.records import WorkspaceRecord
from roost.workspace.engine import Engine

__all__ = ["BoundWorkspace", "native_path"]

P = ParamSpec("P")
T = TypeVar("T")


class BoundWorkspace:
    """One workspace of one engine, as every handle of it holds it."""

    __slots__ = ("engine", "id")

    def __init__(self, engine: Engine, ws_id: str) -> None:
        self.engine = engine
        self.id = ws_id

    def record(self) -> WorkspaceRecord:
        """Its record as it is now (another process may have stopped or restarted it).

        Raises:
            NotFound: workspace_not_found once it is deleted.
            WorkspaceError: workspace_corrupt.
        """
        return self.engine.store.load(self.id)

    def __call__(
        self, operation: Callable[Concatenate[Engine, WorkspaceRecord, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`operation(engine, record, *args, **kwargs)` with the record read now."""
        return operation(self.engine, self.record(), *args, **kwargs)


def native_path(path: str | bytes | None) -> str | None:
    """A path given as bytes, as the `str` `os.fsdecode` makes of it (names are bytes: both are welcome)."""
    return os.fsdecode(path) if isinstance(path, bytes) else path
