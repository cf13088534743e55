"""The agent's seam to the operating system outside the workspace's files.

`procfs` (a process's state, read from /proc).

Imports: the standard library only; nothing else of the agent, not even
protocol.
"""
