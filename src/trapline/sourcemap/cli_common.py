"""What ``trapline sourcemap`` and ``trapline hermes | proguard | dsym | symbol-sets`` share.

Both are clients of the same upload protocol, so they take the server, key and project the same
way (flags, then ``POSTHOG_CLI_*``), name a release the same way, print progress and errors the
same way and end with the same exit codes. Only that plumbing is here; what each command finds
and uploads stays in ``command`` and ``mobile``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

import httpx

from trapline.sourcemap.client import Api, ClientError, UploadReport
from trapline.sourcemap.config import DEFAULT_HOST, ApiConfig, ConfigError, resolve_config
from trapline.sourcemap.release import ReleaseSpec, release_spec

__all__ = [
    "ApiCommand",
    "CommandError",
    "Output",
    "add_api_arguments",
    "add_batch_size_argument",
    "add_release_arguments",
    "positive_int",
    "release_from_flags",
    "upload_summary",
]


class CommandError(Exception):
    """The command cannot go on; the message says why."""


class Output:
    """Progress lines on ``out``; errors on ``err``, prefixed with the command (``trapline hermes: error: …``)."""

    def __init__(self, out: TextIO, err: TextIO, tool: str) -> None:
        self._out = out
        self._err = err
        self._tool = tool

    def step(self, message: str) -> None:
        print(message, file=self._out, flush=True)

    def error(self, message: str) -> None:
        print(f"trapline {self._tool}: error: {message}", file=self._err, flush=True)


# --- arguments ---------------------------------------------------------------------------------


def add_release_arguments(parser: argparse.ArgumentParser, *, name_help: str) -> None:
    """``--release-name`` and ``--release-version``, read by :func:`release_from_flags`."""
    parser.add_argument("--release-name", metavar="NAME", help=name_help)
    parser.add_argument("--release-version", metavar="VERSION", help="the release's version (default: the git commit)")


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """Where to upload and as whom, read by :meth:`ApiCommand.config`."""
    # dest keeps it apart from `trapline serve --host`, which main() passes to the server settings.
    parser.add_argument(
        "--host", dest="api_host", metavar="URL", help=f"the server (POSTHOG_CLI_HOST, default {DEFAULT_HOST})"
    )
    parser.add_argument("--project-id", metavar="ID", help="the project's id (POSTHOG_CLI_PROJECT_ID)")
    parser.add_argument(
        "--api-key", metavar="KEY", help="a personal API key with error_tracking:write (POSTHOG_CLI_API_KEY)"
    )
    parser.add_argument("--skip-ssl-verification", action="store_true", help="accept any TLS certificate")


def add_batch_size_argument(parser: argparse.ArgumentParser, default: int, *, note: str = "") -> None:
    """``--batch-size``; the default differs by command (the mobile ones follow PostHog's CLI, said in ``note``)."""
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=default,
        metavar="N",
        help=f"symbol sets per bulk_start_upload request (default {default}{note})",
    )


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def release_from_flags(name: str | None, version: str | None, where: Path) -> ReleaseSpec | None:
    """The release the flags name, completed from git in ``where``; one flag that git cannot complete fails."""
    spec = release_spec(name, version, where)
    if spec is None and (name or version):
        missing = "--release-version" if name else "--release-name"
        raise CommandError(f"{missing} is needed too (it could not be read from git in {where})")
    return spec


def upload_summary(report: UploadReport, problems: int) -> str:
    """The last line of an upload; ``problems`` are the files that failed before being sent."""
    return (
        f"Uploaded {len(report.uploaded)}, already on the server {len(report.present)}, "
        f"failed {len(report.failed) + problems}"
    )


# --- running -----------------------------------------------------------------------------------


class ApiCommand(ABC):
    """A parsed command that talks to the server; a module's ``run`` is its subclass's :meth:`execute`."""

    def __init__(
        self,
        args: argparse.Namespace,
        env: Mapping[str, str],
        output: Output,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.args = args
        self.env = env
        self.output = output
        self.transport = transport
        self.sleep = sleep

    @classmethod
    @abstractmethod
    def tool_name(cls, args: argparse.Namespace) -> str:
        """The command as errors name it: ``trapline <tool_name>: error: …``."""

    @abstractmethod
    def run(self) -> int:
        """Do the work; the exit code, or CommandError, ConfigError or ClientError (exit code 1)."""

    @classmethod
    def execute(
        cls,
        args: argparse.Namespace,
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Run the parsed command; ``transport`` and ``sleep`` are for tests."""
        output = Output(out or sys.stdout, err or sys.stderr, cls.tool_name(args))
        try:
            return cls(args, os.environ if env is None else env, output, transport, sleep).run()
        except (CommandError, ConfigError, ClientError) as exc:
            output.error(str(exc))
            return 1

    def config(self) -> ApiConfig:
        """The server, key and project from the flags of :func:`add_api_arguments`, then ``POSTHOG_CLI_*``."""
        return resolve_config(
            host=self.args.api_host,
            api_key=self.args.api_key,
            project_id=self.args.project_id,
            env=self.env,
            skip_ssl_verification=self.args.skip_ssl_verification,
        )

    def open_api(self, config: ApiConfig) -> Api:
        return Api(config, transport=self.transport, sleep=self.sleep, notify=self.output.step)

    def announce_release(self, api: Api, spec: ReleaseSpec) -> str:
        """The release's id on the server (looked up or created), said in a progress line."""
        release_id, created = api.release(spec)
        self.output.step(f"Release {spec.label}: {release_id} ({'created' if created else 'existing'})")
        return release_id
