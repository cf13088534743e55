"""Which workspaces a listing keeps: by labels, state and backend.

Imports: backends (the names), store.states, errors, models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from roost.backends import BACKEND_NAMES
from roost.errors import InvalidArgument
from roost.models import WorkspaceInfo
from roost.store.states import STATES

# A record that cannot be read is listed with this state (see lifecycle.corrupt_info).
CORRUPT = "corrupt"
LISTED_STATES = (*STATES, CORRUPT)


@dataclasses.dataclass(frozen=True)
class ListFilter:
    """Every given condition must hold: each label K=V, the state, the backend."""

    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    state: str | None = None
    backend: str | None = None

    def __post_init__(self) -> None:
        if self.state is not None and self.state not in LISTED_STATES:
            raise InvalidArgument(
                f"unknown workspace state {self.state!r}", hint=f"choose one of: {', '.join(LISTED_STATES)}"
            )
        if self.backend is not None and self.backend not in BACKEND_NAMES:
            raise InvalidArgument(
                f"unknown backend {self.backend!r}", hint=f"choose one of: {', '.join(BACKEND_NAMES)}"
            )

    def keeps(self, info: WorkspaceInfo) -> bool:
        return (
            all(info.labels.get(key) == value for key, value in self.labels.items())
            and (self.state is None or info.state == self.state)
            and (self.backend is None or info.backend == self.backend)
        )
