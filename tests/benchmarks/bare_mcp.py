"""The MCP SDK's own server with one tool that does nothing, stateless with JSON
responses as ``/mcp`` is, and no project: the floor of an MCP call (the client, the
SDK's server and the transport, with no work). ``stateful`` is the same server keeping a
session per client, which one process can do but a set of workers cannot (a session's
calls would reach any of them): the floor of the SDK's fastest way."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="floor")


@server.tool(description="Answer at once, doing nothing.")
async def nothing() -> dict[str, bool]:
    return {"done": True}


application = server.streamable_http_app(json_response=True, stateless_http=True)
stateful = server.streamable_http_app(json_response=True, stateless_http=False)
