"""Named snapshots of /workspace, the changes since one, and resetting to one.

`trees` (scanning a tree into entries, with the stat cache), `content` (the
pack store holding each distinct content once), `named` (the snapshots
themselves: create, list, delete, compare, reset), `restore` and
`set_aside` (rewriting the workspace to a snapshot, directories set aside
rather than copied), `diff_text` (unified patches) and `handlers` (the
snapshot.* and workspace.diff/reset operations).

Imports: the request core (`context`, `record_page`, `state`), the
agent's `fs` and `system` layers, protocol and the standard library. Never
another operation package (shells, services, files, execs), the op table
or the server.
"""
