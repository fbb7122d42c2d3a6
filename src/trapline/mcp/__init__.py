"""An MCP server for coding agents: Trapline's issues, stacks and triage actions as tools.

``api`` (the REST API for one caller), ``text`` (what the tools say, pure), ``tools`` (the
tools, resources and prompts), ``server`` (Streamable HTTP at ``/mcp``, stdio for ``trapline
mcp``).
"""
