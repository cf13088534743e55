"""PTY shells the agent holds open across host calls.

`records` (a shell's persisted facts and its state machine), `ring` (the
bounded output buffer addressed by offsets), `registry` (the running
shells, their terminals and the one reader thread) and `handlers` (the
shell.* operations).

Imports: the request core (`context`, `record_page`, `state`), the
agent's `fs` and `system` layers, protocol and the standard library. Never
another operation package (services, snapshots, files, execs), the op
table or the server.
"""
