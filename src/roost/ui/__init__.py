"""`roost ui`: a local dashboard over the SDK (workspaces, terminals, diffs, services, live).

A front end like the CLI and MCP: it calls the SDK only (`roost.client`), never what is
behind it. `serve(UiOptions(...))` runs it; `python -m roost.ui` is the program `roost ui` becomes.

Imports: its own modules.
"""

from __future__ import annotations

from roost.ui.server import UiOptions, serve

__all__ = ["UiOptions", "serve"]
