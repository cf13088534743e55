"""Network tools (full profile): show and change a workspace's network policy and published ports, and
read its decision log.

Imports the MCP layer's siblings, `roost.models` and the MCP types only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost.mcp.result_schemas import Schema, listing, result_schema
from roost.mcp.results import offload
from roost.mcp.toolkit import AllowList, PublishList, ToolGroup, WorkspaceRef
from roost.models import NetworkDecision, NetworkInfo

# What one network_log call returns at most; older decisions stay readable with a smaller window.
MAX_LOG_ENTRIES = 500


def _page(found: list[NetworkDecision], limit: int, before: int | None) -> dict[str, Any]:
    """The `limit` decisions that end at index `before` (None: the newest), oldest first."""
    end = len(found) if before is None else max(0, min(before, len(found)))
    start = max(0, end - limit)
    page: dict[str, Any] = {"decisions": [d.to_dict() for d in found[start:end]], "total": len(found)}
    if start > 0:
        page["more"] = f"{start} older decisions: call network_log again with before={start}"
    return page


class NetworkTools(ToolGroup):
    """The tools for a workspace's network policy, published ports and decision log."""

    TOOLS = (
        ("network_show", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("network_set", ToolAnnotations(idempotent_hint=True, open_world_hint=False)),
        ("network_log", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        "network_show": result_schema(NetworkInfo),
        "network_set": result_schema(NetworkInfo),
        "network_log": listing("decisions", NetworkDecision, total=int, more=str)
        | {"required": ["decisions", "total"]},
    }

    async def network_show(self, workspace: WorkspaceRef) -> CallToolResult:
        """The workspace's network policy (off, egress, allowlist and its entries), its published
        ports (host address and port -> guest port, and the service that owns each), and whether
        roost's gateway is enforcing them now."""
        return await offload(lambda: self.context.workspace(workspace).network.show().to_dict())

    async def network_set(
        self,
        workspace: WorkspaceRef,
        policy: Annotated[
            str | None, Field(description="off, egress or allowlist (omit to keep the current one).")
        ] = None,
        allow: AllowList = None,
        publish: PublishList = None,
    ) -> CallToolResult:
        """Change a running workspace's network without restarting it.

        Omitted arguments keep what the workspace has (the allow-list only while the policy stays
        allowlist); `publish` replaces the workspace's own published ports ([] removes them; a
        service's ports are the service's). Returns what network_show returns.
        """

        def work() -> dict[str, Any]:
            network = self.context.workspace(workspace).network
            return network.set(policy, allow=allow, publish=publish).to_dict()

        return await offload(work)

    async def network_log(
        self,
        workspace: WorkspaceRef,
        denied: Annotated[bool, Field(description="Only what was refused.")] = False,
        limit: Annotated[int, Field(description="Most decisions to return.", ge=1, le=MAX_LOG_ENTRIES)] = 100,
        before: Annotated[
            int | None, Field(description="Return the decisions before this index (from `more`).", ge=0)
        ] = None,
    ) -> CallToolResult:
        """The gateway's decisions on the workspace's DNS lookups and connections, newest last:
        time, name, address, port, protocol (tcp, udp, dns), verdict (allowed, denied) and reason."""

        def work() -> dict[str, Any]:
            found = self.context.workspace(workspace).network.log(denied=denied)
            return _page(found, limit, before)

        return await offload(work)
