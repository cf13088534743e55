"""Names as the agent sends them, turned into the native `str` the models hold.

The agent writes every file name in its text form (`roost.protocol.names`);
a result that holds one that does not parse is not our protocol.

Imports: errors, protocol.names only.
"""

from __future__ import annotations

from roost.errors import ProtocolError
from roost.protocol.names import NameFormError, from_text

__all__ = ["received_name", "received_opt_name"]


def received_name(value: object) -> str:
    """The native name (`os.fsdecode` form) a text form from the agent stands for.

    Raises:
        ProtocolError: it is not a name's text form.
    """
    try:
        return from_text(str(value))
    except NameFormError as exc:
        raise ProtocolError(f"the agent sent a badly quoted name: {exc}") from None


def received_opt_name(value: object) -> str | None:
    return None if value is None else received_name(value)
