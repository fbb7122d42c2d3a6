"""``trapline mcp``: the MCP server on stdin/stdout, for agents that start it as a command.

It is a client of a Trapline server (this machine's or another's), like ``trapline
sourcemap``: it reads no server settings, only where the server is and whose key to use.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

__all__ = ["add_arguments", "run"]

_KEY_VARIABLES = ("TRAPLINE_API_KEY", "POSTHOG_PERSONAL_API_KEY", "POSTHOG_CLI_API_KEY")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the Trapline server, e.g. https://errors.example.com (TRAPLINE_URL)")
    parser.add_argument("--api-key", help=f"a personal API key, phx_… ({' or '.join(_KEY_VARIABLES)})")
    parser.add_argument("--project-id", help="the project (TRAPLINE_PROJECT_ID); default: the key's first project")
    parser.add_argument("--skip-ssl-verification", action="store_true", help="accept any TLS certificate")


def run(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    url = args.url or env.get("TRAPLINE_URL") or "http://127.0.0.1:8000"
    key = args.api_key or next((env[name] for name in _KEY_VARIABLES if env.get(name)), None)
    if not key:
        print(
            f"trapline mcp: error: no API key: pass --api-key or set {_KEY_VARIABLES[0]} (a personal API key, phx_…)",
            file=sys.stderr,
        )
        return 1
    project = args.project_id or env.get("TRAPLINE_PROJECT_ID") or "@current"
    if not (project.isdigit() or project == "@current"):
        print(f"trapline mcp: error: the project id must be a number, not {project!r}", file=sys.stderr)
        return 2
    # Imported here: the MCP SDK takes a second to import, which every other command would pay.
    from trapline.mcp.server import run_stdio

    run_stdio(url, key, project, verify=not args.skip_ssl_verification)
    return 0
