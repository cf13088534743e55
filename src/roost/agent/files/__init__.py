"""Operations on the workspace's files: one at a time, as archives, and as patches.

`handlers` (file.list, read, write, delete, stat), `archive` (tar and
directory trees in and out, staged and renamed into place) and `patch`
(applying unified diffs, all or nothing).

Imports: the request core (`context`, `record_page`, `state`), the
agent's `fs` layer, protocol and the standard library. Never another
operation package (shells, services, snapshots, execs), the op table or
the server.
"""
