"""Running one command to completion, its output streamed back as it comes.

`handlers` (the exec operation: its own process group, output caps,
timeouts and cancellation).

Imports: the request core (`context`, `state`), the agent's `fs` and
`system` layers, protocol and the standard library. Never another
operation package (shells, services, snapshots, files), the op table or
the server.
"""
