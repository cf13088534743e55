"""The host <-> agent wire protocol: frames and message vocabulary.

Each op's arguments, result and streamed records are typed messages in
`roost.protocol.ops` (its `table.OP_TABLE` names them for every op).

No I/O and standard library only, so the guest agent can import it.
"""

from roost.protocol.frames import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Frame,
    FrameDecoder,
    FrameError,
    Kind,
    encode_frame,
    read_frame,
    write_frame,
)
from roost.protocol.messages import PROTOCOL_VERSIONS, Code, Op, OpError, choose_version

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "PROTOCOL_VERSIONS",
    "Code",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Kind",
    "Op",
    "OpError",
    "choose_version",
    "encode_frame",
    "read_frame",
    "write_frame",
]
