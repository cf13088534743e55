"""The agent's seam to the operating system outside the workspace's files.

`processes` (the one object that spawns, signals and watches processes,
for execs, shells and services alike), `procfs` (a process's state, read
from /proc) and `clock` (the wall-clock time records carry).

Imports: the standard library only; nothing else of the agent, not even
protocol.
"""
