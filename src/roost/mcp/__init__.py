"""roost's MCP server: the SDK's operations as tools for a model, over stdio or streamable HTTP.

The entry point is `roost.mcp.server.serve(ServeOptions(...))`; `python -m roost.mcp`
calls it, and `roost mcp serve` becomes that program (see `roost.serve_options`).
This package imports only `roost.client` (and the values and errors below it),
`roost.serve_options` and the `mcp` SDK, never the CLI, and nothing here imports
`mcp` until the server module is loaded, so importing the package stays cheap.
"""
