"""Named background services the agent starts, probes, watches, restarts and stops.

`model` (specs, records and the state machine; no I/O), `logs` (bounded,
rotated log files), `probes` (one readiness attempt of each kind),
`supervisor` (the running services and their watcher threads) and
`handlers` (the service.* operations).

Imports: the request core (`context`, `record_page`, `state`), the
agent's `fs` and `system` layers, protocol and the standard library. Never
another operation package (shells, snapshots, files, execs), the op table
or the server.
"""
