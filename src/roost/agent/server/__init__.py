"""The agent's side of the wire: listening, connections, handshake and dispatch to the op table.

`listen` (where connections come from: a Unix socket, a vsock port, an
inherited fd), `serial_port` (a virtio-serial port, one host session after
another), `fd_stream` (a plain descriptor as a byte stream) and
`connection` (one byte stream served: frames in, handlers run, frames out).

Imports: the op table (`ops`), the request core (`context`, `state`),
protocol and the standard library. Never an operation package directly:
handlers are reached only through the op table.
"""
