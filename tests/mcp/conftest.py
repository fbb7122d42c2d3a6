"""The MCP tests' fixtures: ``live_trapline``, a live server seeded with real SDK issues."""

from tests.mcp.live import live_trapline  # noqa: F401  (registers the fixture for tests/mcp)
