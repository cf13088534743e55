"""roost's MCP server: the SDK's operations as tools for a model, over stdio or streamable HTTP.

The entry point is `roost.mcp.server.serve(ServeOptions(...))`; `roost mcp serve`
and `python -m roost.mcp` both call it. This package imports only `roost.client`
(and the values and errors below it) plus the `mcp` SDK, and nothing here imports
`mcp` until the server module is loaded, so importing the package stays cheap.
"""
