"""The roost guest agent: one long-lived process inside every workspace.

It runs every workspace operation (exec, files, archives, patches; later
shells and services) for every backend. Standard library and
`roost.protocol` only, so the directories `roost/agent` and
`roost/protocol` (with `roost/__init__.py`) can be copied into an image and
run by the image's own python3. No host module imports this package except
to locate its files or spawn it.
"""
