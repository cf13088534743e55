"""Op argument messages made on the host: their checks (the agent's own) fail as the host's errors.

A message checks itself when it is made (`roost.protocol.ops.message`), so
the host refuses a bad value before it calls the agent, by the very rule
the agent applies: `with checked_args(): args = ShellReadArgs(...)`.

Imports: errors, protocol and the standard library only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from roost.errors import error_from_code
from roost.protocol import OpError

__all__ = ["checked_args"]


@contextlib.contextmanager
def checked_args() -> Iterator[None]:
    """Turn a message's check failing in the block into the host's error for its code.

    Raises:
        InvalidArgument: (or the error class of the check's code, e.g. read_too_large) for a bad value.
    """
    try:
        yield
    except OpError as exc:
        raise error_from_code(exc.code, exc.message, exc.hint or None, exc.details or None) from None
