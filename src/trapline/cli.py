"""The ``trapline`` command: serve, worker, migrate, vacuum, requeue, reprocess, project, bootstrap, demo,
sourcemap, hermes, proguard, dsym, symbol-sets."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from trapline import __version__, demo
from trapline.activity import Activity
from trapline.db import migrate
from trapline.db.engine import Database
from trapline.db.open import open_database
from trapline.db.types import utcnow
from trapline.diskspace import disk_full_cause
from trapline.errors import TraplineError
from trapline.logs import configure_logging
from trapline.mcp import command as mcp_command
from trapline.objects.store import ObjectStoreError
from trapline.sentry.auth import dsn
from trapline.settings import Settings, SettingsError, load_settings
from trapline.sourcemap import command as sourcemap_command
from trapline.sourcemap import mobile as mobile_command

if TYPE_CHECKING:
    from trapline.idle_worker import IdleWorker
    from trapline.symbols.resolver import SymbolResolver

__all__ = ["main"]

log = logging.getLogger("trapline")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.handler is _sourcemap:
        # A client of a server (this one or PostHog's), run in a build folder: the local
        # server's settings (and their data dir) have nothing to do with it.
        return sourcemap_command.run(args)
    if args.handler is _mobile:
        return mobile_command.run(args)  # the same: a client, run without the server's settings
    if args.handler is _mcp:
        return mcp_command.run(args)  # a client too: stdout is the MCP wire, warnings go to stderr
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"trapline: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        result: int = args.handler(settings, args)
        return result
    except TraplineError as exc:
        print(f"trapline: {exc.detail}", file=sys.stderr)
        return 2
    except ObjectStoreError as exc:
        print(f"trapline: the object store ({settings.object_store_url}) cannot be used: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Not a bug: say what to do rather than show a traceback (SQLite says "disk I/O error").
        cause = disk_full_cause(exc)
        if cause is None:
            raise
        print(f"trapline: the disk is full ({cause}); free some space and try again", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trapline", description="Self-hosted error tracking.")
    parser.add_argument("--version", action="version", version=f"trapline {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host", help="interface to listen on (TRAPLINE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (TRAPLINE_PORT, default 8000)")
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="process queued events (run any number, on any machine)")
    worker.add_argument(
        "--threads", type=int, default=1, help="worker threads in this process (default 1; more help on PostgreSQL)"
    )
    worker.add_argument("--once", action="store_true", help="process until the queue is empty, then exit")
    worker.set_defaults(handler=_worker)

    migrate_cmd = commands.add_parser("migrate", help="bring the database schema up to date and exit")
    migrate_cmd.set_defaults(handler=_migrate)

    vacuum = commands.add_parser(
        "vacuum", help="rewrite the database compactly, so that SQLite gives back what retention deletes (once)"
    )
    vacuum.set_defaults(handler=_vacuum)

    requeue = commands.add_parser("requeue", help="retry queued events whose processing failed too often")
    requeue.set_defaults(handler=_requeue)

    usage = commands.add_parser(
        "usage", help="events stored and dropped per day and reason, queue depth, database and storage sizes"
    )
    usage.add_argument("--project", type=int, help="only this project (default: every project)")
    usage.add_argument("--days", type=int, default=30, help="how many days back (default 30)")
    usage.add_argument("--json", action="store_true", help="print the result as one JSON object")
    usage.set_defaults(handler=_usage)

    reprocess = commands.add_parser(
        "reprocess", help="resolve stored events again, e.g. after uploading the source maps they lacked"
    )
    reprocess.add_argument("--project", type=int, required=True, help="the project id")
    reprocess.add_argument("--since", help='only events since then: ISO date or relative ("-7d"); default: all')
    reprocess.set_defaults(handler=_reprocess)

    project = commands.add_parser("project", help="show a project's settings, or change them")
    project.add_argument("--project", type=int, required=True, help="the project id")
    project.add_argument(
        "--autocapture-exceptions",
        choices=("on", "off"),
        help="whether browsers capture unhandled errors and rejections by themselves (remote config)",
    )
    project.add_argument(
        "--rotate-sentry-key", action="store_true", help="give the Sentry DSN a new key (SDKs with the old DSN stop)"
    )
    project.add_argument("--json", action="store_true", help="print the result as one JSON object")
    project.set_defaults(handler=_project)

    boot = commands.add_parser(
        "bootstrap", help="create a user, organization and project if missing, and a new personal API key"
    )
    boot.add_argument("--email", required=True)
    boot.add_argument("--password", required=True)
    boot.add_argument("--organization", required=True)
    boot.add_argument("--project", required=True)
    boot.add_argument("--json", action="store_true", help="print the result as one JSON object")
    boot.set_defaults(handler=_bootstrap)

    password = commands.add_parser(
        "password", help="set a user's web UI password (a generated one unless given) and sign them out"
    )
    password.add_argument("--email", required=True)
    password.add_argument("--password", help="the new password (at least 8 characters); generated when left out")
    password.set_defaults(handler=_password)

    demo_cmd = commands.add_parser("demo", help="create a demo project once and print how to use it")
    demo_cmd.set_defaults(handler=_demo)

    sourcemap = commands.add_parser(
        "sourcemap", help="inject chunk ids into JavaScript bundles and upload their source maps (PostHog's CLI)"
    )
    sourcemap_command.add_arguments(sourcemap)
    sourcemap.set_defaults(handler=_sourcemap)

    # PostHog's CLI's names for the mobile and native symbol commands (top level since its 0.7.0).
    mobile_commands = (
        ("hermes", "upload React Native Hermes source maps (PostHog's CLI)", mobile_command.add_hermes_arguments),
        ("proguard", "upload an Android ProGuard/R8 mapping (PostHog's CLI)", mobile_command.add_proguard_arguments),
        ("dsym", "upload iOS/macOS dSYM debug files (PostHog's CLI)", mobile_command.add_dsym_arguments),
        (
            "symbol-sets",
            "upload native debug files: ELF with debug info and dSYM (PostHog's CLI)",
            mobile_command.add_symbol_sets_arguments,
        ),
    )
    for name, description, add_arguments in mobile_commands:
        mobile = commands.add_parser(name, help=description)
        add_arguments(mobile)
        mobile.set_defaults(handler=_mobile)

    mcp = commands.add_parser("mcp", help="serve MCP (for coding agents) on stdin/stdout, calling a Trapline's API")
    mcp_command.add_arguments(mcp)
    mcp.set_defaults(handler=_mcp)

    for sub in (serve, worker, migrate_cmd, vacuum, requeue, usage, reprocess, project, boot, demo_cmd):
        sub.add_argument("--data-dir", help="where Trapline keeps its files (TRAPLINE_DATA_DIR)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return load_settings(**overrides)


def _database(settings: Settings, *, reprocessable: bool = False) -> Database:
    return open_database(
        settings.database_url,
        busy_timeout_seconds=settings.database_busy_timeout_seconds,
        pool_size=settings.database_pool_size,
        reprocessable=reprocessable,
    )


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    db = _database(settings)
    try:
        before = migrate.current_revision(db.engine)
        migrate.upgrade(db.engine)
        after = migrate.current_revision(db.engine)
    finally:
        db.dispose()
    log.info("database migrated", extra={"from_revision": before, "to_revision": after})
    return 0


def _vacuum(settings: Settings, args: argparse.Namespace) -> int:
    from trapline.db.engine import QUEUE_PAGE_SIZE
    from trapline.db.vacuum import vacuum_full

    db = _database(settings)
    try:
        migrate.upgrade(db.engine)
        reports = [("SQLite", vacuum_full(db.engine))]
        if db.queue_apart:
            reports.append(("its queue file", vacuum_full(db.queue.engine, QUEUE_PAGE_SIZE)))
    finally:
        db.dispose()
    if reports[0][1].bytes_before is None:
        print("PostgreSQL: VACUUM (ANALYZE) done (autovacuum keeps deleted rows' space reusable by itself)")
        return 0
    mb = 1024 * 1024
    for name, report in reports:
        print(
            f"{name}: {(report.bytes_before or 0) / mb:,.1f} MB → {(report.bytes_after or 0) / mb:,.1f} MB; "
            f"pages {(report.page_size_before or 0) // 1024} kB → {(report.page_size_after or 0) // 1024} kB; "
            f"auto_vacuum {report.mode_before} → {report.mode_after}: retention now gives freed space back"
        )
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from trapline.app import create_app
    from trapline.http_protocol import HttpProtocol
    from trapline.supervisor import WorkerProcesses

    _bound_malloc_arenas()
    db = _database(settings)
    migrate.upgrade(db.engine)
    app = create_app(settings, db)
    workers = WorkerProcesses(settings.workers, ["--data-dir", str(settings.data_dir)])
    workers.start()
    activity = Activity()
    idle = _idle_worker(settings, activity)
    _tune_gc()
    log.info("serving", extra={"url": settings.public_url, "host": settings.host, "port": settings.port})
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools, answers in one write, ingest direct, each request noted for the idle worker
        http=HttpProtocol.answering(app.capture, app.sentry, activity=activity),
        log_config=None,
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
    # Uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal to the
    # handler that was installed before it started; ours turns that into a clean exit 0
    # instead of a kill by signal (SIGTERM) or a KeyboardInterrupt traceback (Ctrl-C).
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    if idle is not None:
        idle.start()
    try:
        uvicorn.Server(config).run()
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if idle is not None:
            idle.stop(timeout=settings.shutdown_grace_seconds)
            idle.worker.db.dispose()
        workers.stop(timeout=settings.shutdown_grace_seconds)
    log.info("stopped")
    return 0


def _idle_worker(settings: Settings, activity: Activity) -> IdleWorker | None:
    """The server's idle worker (``idle_worker.py``), unless turned off."""
    enabled = settings.idle_worker if settings.idle_worker is not None else settings.workers > 0
    if not enabled:
        return None
    from trapline.idle_worker import BATCH_REQUESTS, MAP_CACHE_BYTES, IdleWorker
    from trapline.worker import Worker, worker_options

    # Its own connections, committing as the worker processes do (see _worker).
    db = _database(settings, reprocessable=True)
    options = replace(
        worker_options(settings),
        batch_size=min(BATCH_REQUESTS, settings.worker_batch_size),
        batch_events=min(BATCH_REQUESTS, settings.worker_batch_events),
    )
    resolver = _symbols(db, settings, max_map_bytes=MAP_CACHE_BYTES)
    return IdleWorker(Worker(db, options, resolver), activity)


# glibc's mallopt parameter for the most arenas the allocator may create.
_M_ARENA_MAX = -8
# The server's threads (the event loop, the spool's two, the idle worker, asyncio's pool) each
# take an allocator arena of their own by default (up to 8 per core), and memory freed in one
# arena serves no other: in make bench's batch mode the server peaked at 173-181 MB with one
# per thread, 167 MB with one for all, 162 with two; capture's rate did not change.
SERVER_MALLOC_ARENAS = 2


def _bound_malloc_arenas() -> None:
    """Let the server's threads share ``SERVER_MALLOC_ARENAS`` allocator arenas (glibc only;
    elsewhere nothing to do). Called before the threads start: a thread keeps the arena it
    first allocated from."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (musl has no mallopt)
        return
    mallopt(_M_ARENA_MAX, SERVER_MALLOC_ARENAS)


def _tune_gc() -> None:
    """Make the cyclic garbage collector's full passes rare.

    Requests and batches allocate many short-lived, acyclic objects; with the default
    thresholds the collector runs full passes over the whole heap every few hundred requests
    (measured: ~100 ms each, a fifth of all CPU time). What exists after start-up is frozen
    out of those passes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import threading

    from trapline.alerts import make_senders, outbox
    from trapline.alerts.dispatch import Dispatcher
    from trapline.supervisor import StopSignals, exit_with_parent
    from trapline.worker import Worker, WorkerThreads, is_dead_local, local_id, worker_options

    if args.threads < 1:
        print("trapline: --threads must be at least 1", file=sys.stderr)
        return 2
    # A worker's commits may be lost in a power cut: what they removed from the queue comes back.
    db = _database(settings, reprocessable=True)
    try:
        migrate.upgrade(db.engine)
        _tune_gc()
        dispatcher = Dispatcher(
            db,
            make_senders(settings),
            sender_id=local_id(),
            base_url=settings.base_url,
            retry_hours=settings.alerts_retry_hours,
            poll_seconds=settings.alerts_poll_seconds,
        )
        # Notifications a crashed process of this machine was sending go out again now.
        outbox.release_dead(db, is_dead_local)
        if args.once:
            result = Worker(db, worker_options(settings), _symbols(db, settings)).drain()
            sent = dispatcher.drain()
            dispatcher.close()
            log.info(
                "queue drained",
                extra={"requests": result.requests, "events": result.events, "stored": result.stored, "alerts": sent},
            )
            return 1 if result.failed_requests else 0
        stop = threading.Event()
        signals = StopSignals(stop).install()
        exit_with_parent(stop)
        resolver = _symbols(db, settings)  # one per process: it keeps parsed source maps
        threads = WorkerThreads(
            lambda: Worker(db, worker_options(settings), resolver, on_notifications=dispatcher.wake), args.threads
        )
        sender = threading.Thread(target=dispatcher.run, args=(stop,), name="trapline-alerts", daemon=True)
        # SQLite: the log is copied into the database here, not in the batches' commits.
        checkpointers = db.checkpointers()
        for checkpointer in checkpointers:
            checkpointer.start()
        threads.start()
        sender.start()
        try:
            signals.wait()
        finally:
            for checkpointer in checkpointers:
                checkpointer.stop()
            # A batch in progress finishes (or, if killed, its lease runs out and another
            # worker takes it): nothing is lost either way. So does a notification being sent.
            threads.stop(timeout=settings.shutdown_grace_seconds + settings.worker_lease_seconds)
            dispatcher.wake()
            sender.join(timeout=settings.shutdown_grace_seconds + settings.alerts_timeout_seconds)
            dispatcher.close()
            signals.restore()
    finally:
        db.dispose()
    log.info("stopped")
    return 0


def _symbols(db: Database, settings: Settings, *, max_map_bytes: int | None = None) -> SymbolResolver:
    from trapline.objects.store import open_store
    from trapline.symbols.resolver import DEFAULT_MAP_CACHE_BYTES, SymbolResolver

    limit = DEFAULT_MAP_CACHE_BYTES if max_map_bytes is None else max_map_bytes
    return SymbolResolver(db, open_store(settings), max_map_bytes=limit)


def _reprocess(settings: Settings, args: argparse.Namespace) -> int:
    from trapline.issues.queries import parse_date
    from trapline.pipeline.reprocess import reprocess

    since = parse_date(args.since, now=utcnow()) if args.since else None
    db = _database(settings)
    try:
        migrate.upgrade(db.engine)
        result = reprocess(db, _symbols(db, settings), args.project, since=since)
    finally:
        db.dispose()
    print(
        f"{result.examined} event(s) with unresolved frames looked at, {result.improved} resolved further, "
        f"{result.regrouped} regrouped"
    )
    return 0


def _requeue(settings: Settings, args: argparse.Namespace) -> int:
    from trapline.events.queue import requeue_failed

    db = _database(settings)
    try:
        migrate.upgrade(db.engine)
        count = requeue_failed(db)
    finally:
        db.dispose()
    print(f"{count} queued request(s) will be retried")
    return 0


def _usage(settings: Settings, args: argparse.Namespace) -> int:
    from trapline.objects.store import open_store
    from trapline.usage.command import run

    if args.days < 1:
        print("trapline: --days must be at least 1", file=sys.stderr)
        return 2
    db = _database(settings)
    try:
        migrate.upgrade(db.engine)
        print(run(db, settings, open_store(settings), project_id=args.project, days=args.days, as_json=args.json))
    finally:
        db.dispose()
    return 0


def _password(settings: Settings, args: argparse.Namespace) -> int:
    from trapline.accounts.members import reset_password

    db = _database(settings)
    try:
        migrate.upgrade(db.engine)
        with db.session(write=True) as session:
            password = reset_password(session, args.email, args.password)
    finally:
        db.dispose()
    print(f"{args.email.strip().lower()} can now sign in with: {password}")
    return 0


def _project(settings: Settings, args: argparse.Namespace) -> int:
    from trapline.projects.models import Project, new_sentry_key

    changes = args.autocapture_exceptions is not None or args.rotate_sentry_key
    db = _database(settings)
    try:
        migrate.upgrade(db.engine)
        with db.session(write=changes) as session:
            found = session.get(Project, args.project)
            if found is None:
                print(f"trapline: there is no project {args.project}", file=sys.stderr)
                return 2
            if args.autocapture_exceptions is not None:
                found.autocapture_exceptions_opt_in = args.autocapture_exceptions == "on"
            if args.rotate_sentry_key:
                found.sentry_public_key = new_sentry_key()
            if changes:
                session.commit()
            shown = {
                "project_id": found.id,
                "name": found.name,
                "project_api_token": found.api_token,
                "sentry_dsn": dsn(settings.public_url, found.sentry_public_key, found.id),
                "autocapture_exceptions": "on" if found.autocapture_exceptions_opt_in else "off",
            }
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(shown))
    else:
        for key, value in shown.items():
            print(f"{key}: {value}")
    return 0


def _sourcemap(settings: Settings, args: argparse.Namespace) -> int:
    return sourcemap_command.run(args)  # main() runs it before loading any settings


def _mobile(settings: Settings, args: argparse.Namespace) -> int:
    return mobile_command.run(args)  # main() runs it before loading any settings


def _mcp(settings: Settings, args: argparse.Namespace) -> int:
    return mcp_command.run(args)  # main() runs it before loading any settings


class _Stopped(Exception):
    """The server was asked to stop and has finished its graceful shutdown."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped()


def _bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    db = _database(settings)
    try:
        migrate.upgrade(db.engine)
        result = demo.bootstrap_credentials(
            db,
            settings,
            email=args.email,
            password=args.password,
            organization=args.organization,
            project=args.project,
        )
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    db = _database(settings)
    try:
        migrate.upgrade(db.engine)
        credentials = demo.demo_credentials(db, settings)
    finally:
        db.dispose()
    print(demo.demo_text(credentials))
    return 0
