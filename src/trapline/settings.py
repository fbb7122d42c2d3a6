"""The one typed settings object. Only this module reads the environment.

Every value comes from a ``TRAPLINE_*`` environment variable (or a ``.env`` file) and has a
default that suits a laptop: SQLite and local files under ``./trapline-data``. Limits are
named after what they bound and carry their unit, either in the name (``_seconds``) or in the
value (``ByteSize`` accepts ``"20MiB"``).

``load_settings()`` is the start-up path: it fills the derived defaults, creates the data dir,
generates and keeps the secret key, and refuses unsafe combinations with a ``SettingsError``
whose message says what to change.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pydantic import ByteSize, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]

SECRET_KEY_FILE = "secret_key"
# Values people paste from examples; a server signing sessions and upload URLs with them is
# as good as unauthenticated.
_PLACEHOLDER_SECRETS = {"changeme", "changethis", "secret", "secret-key", "trapline", "development"}
_MIN_SECRET_LENGTH = 32


class SettingsError(Exception):
    """A setting is missing, malformed or unsafe; the message says which and what to do."""


class Settings(BaseSettings):
    """Trapline's configuration, read from ``TRAPLINE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TRAPLINE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./trapline-data")
    # Empty means "SQLite file in the data dir" / "folder in the data dir"; see load_settings().
    database_url: str = ""
    object_store_url: str = ""
    secret_key: SecretStr | None = None
    # The URL people and SDKs reach this server at; used for absolute links (pagination,
    # upload URLs). Empty means http://{host}:{port}.
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    # One line per request is useful when debugging, but costs ~10% of ingest throughput.
    access_log: bool = False

    # --- limits -------------------------------------------------------------------------------
    # REST API bodies are small JSON documents (rules, releases); anything larger is a mistake.
    api_body_max_size: ByteSize = ByteSize(1024 * 1024)
    # Pagination: DRF lets clients ask for any page size; we clamp it so one request can't
    # materialise a whole table.
    api_page_max_limit: int = Field(default=1000, ge=1)
    # How long a request may wait for the SQLite write lock before failing.
    database_busy_timeout_seconds: float = Field(default=10.0, gt=0)
    database_pool_size: int = Field(default=10, ge=1)
    # Time given to in-flight requests when the server is asked to stop (SIGTERM).
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # One uploaded symbol set (source map); PostHog's CLI and server refuse files over 100 MiB.
    object_upload_max_size: ByteSize = ByteSize(100 * 1024 * 1024)

    # --- S3 (when object_store_url is s3://) --------------------------------------------------
    # Empty means AWS itself; set it for MinIO, R2, Ceph and other S3-compatible servers (which
    # are then addressed path-style, since they have no per-bucket host names).
    s3_endpoint_url: str = ""
    # Empty means boto3's own lookup (AWS_REGION, ~/.aws/config).
    s3_region: str = ""
    # Empty means boto3's usual credential chain (AWS_* variables, ~/.aws, the instance's role),
    # so that on AWS no key needs to be written into Trapline's configuration at all.
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr | None = None

    # --- ingestion ----------------------------------------------------------------------------
    # A capture request as received (possibly compressed). posthog-python sends at most ~5 MiB
    # per batch; PostHog's own capture service refuses bodies over 20 MB.
    ingest_body_max_size: ByteSize = ByteSize(20 * 1024 * 1024)
    # The same body after decompression: the guard against decompression bombs (a few KiB of
    # gzip can inflate to gigabytes). Memory per request is bounded by this.
    ingest_decompressed_max_size: ByteSize = ByteSize(64 * 1024 * 1024)
    # One event. PostHog drops events over 1 MB; posthog-python drops its own over 900 KiB.
    ingest_event_max_size: ByteSize = ByteSize(1024 * 1024)
    # Sentry's endpoints, with Relay's limits: a request as sent, an envelope decompressed,
    # one event in it.
    sentry_body_max_size: ByteSize = ByteSize(20 * 1024 * 1024)
    sentry_envelope_max_size: ByteSize = ByteSize(100 * 1024 * 1024)
    sentry_event_max_size: ByteSize = ByteSize(1024 * 1024)
    # Worker processes `trapline serve` starts and restarts; 0 leaves processing to separate
    # `trapline worker` processes. Processes, not threads: a worker thread would share the
    # GIL with the event loop and cut the rate at which events are accepted by half or more.
    workers: int = Field(default=1, ge=0, le=64)
    # A worker thread in `trapline serve` that processes queued requests only while the server
    # has begun no request for a moment (see idle_worker.py): a backlog left by a burst drains
    # on the server's idle core too. Unset: on when the server starts worker processes (one
    # box), off when it starts none (servers of a larger deployment, sized on their own).
    idle_worker: bool | None = None
    # A worker's batch: at most this many queued requests and (but at least one request) this
    # many events. Bigger batches amortise what every batch costs (its reads of rules and
    # alerts, ~20 statements, two commits and a log sync: ~10 ms); smaller ones hold SQLite's
    # write lock, which API writes wait for, for less time, and bound a worker's memory.
    # Measured with single-event requests: 1000 processed 15% more events per second than 500
    # (~10 MB more memory); 2000 another 5% (~35 MB more).
    worker_batch_size: int = Field(default=1000, ge=1, le=10_000)
    worker_batch_events: int = Field(default=1000, ge=1, le=100_000)
    # How often an idle worker looks for new events (a read, no lock): the processing delay
    # of an event that arrives at an idle server.
    worker_poll_seconds: float = Field(default=0.1, gt=0, le=60)
    # How long a worker may hold a batch before another may take it over (it has died).
    worker_lease_seconds: float = Field(default=120.0, gt=0)
    # Processing attempts before a request is parked (kept, not retried until `trapline requeue`).
    worker_max_attempts: int = Field(default=5, ge=1)

    # --- volume: back-pressure, disk, retention -----------------------------------------------
    # Capture answers 503 with Retry-After (the SDKs retry later) instead of queueing more when
    # this many events wait for a worker, or the oldest has waited this long: workers that
    # cannot keep up (or are not running) must not let the queue grow until the disk is full.
    # 0 turns a bound off.
    queue_max_events: int = Field(default=1_000_000, ge=0)
    queue_max_wait_seconds: float = Field(default=900.0, ge=0)
    # The Retry-After of those refusals: long enough for workers to catch up, short enough not
    # to lose the moment (PostHog's SDKs wait at most 30 s whatever is asked).
    queue_retry_after_seconds: int = Field(default=30, ge=1, le=3600)
    # Below this much free space on the data directory's filesystem (and the object store's
    # folder), capture and symbol uploads answer 503 with Retry-After; what was accepted before
    # is processed as usual. Room is kept for processing, which turns queued requests into
    # events, and for SQLite's journal.
    disk_min_free: ByteSize = ByteSize(512 * 1024 * 1024)
    # Events older than this many days are deleted (a project's own setting wins).
    retention_days: int = Field(default=90, ge=1, le=36_500)
    # Retention deletes this many events per transaction, so that it never holds SQLite's write
    # lock (which ingestion needs) for long.
    retention_batch_size: int = Field(default=2000, ge=1, le=100_000)
    # How often each worker looks for what retention should delete.
    retention_interval_seconds: float = Field(default=300.0, gt=0)
    # Parked requests (processing failed repeatedly) and finished alert deliveries are kept this
    # long before retention deletes them.
    retention_parked_days: int = Field(default=30, ge=1)
    retention_deliveries_days: int = Field(default=30, ge=1)

    # --- alerts -----------------------------------------------------------------------------
    # Webhooks and other outbound notifications may not reach loopback, private, link-local or
    # shared (CGNAT) addresses: a URL typed into a form must not become a way to probe the
    # server's own network. True allows them (a LAN-only chat server, and the tests), except
    # the cloud metadata addresses, which nothing has a reason to post alerts to.
    alerts_allow_private_networks: bool = False
    # One attempt to deliver a notification: connecting, sending and reading the answer.
    alerts_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # How much of a receiver's answer is read (and kept, cut, in the delivery log).
    alerts_response_max_size: ByteSize = ByteSize(64 * 1024)
    # Failed deliveries are retried with growing pauses for this long, then recorded as failed.
    alerts_retry_hours: float = Field(default=24.0, gt=0)
    # How often workers look for notifications due (retries, and those other processes queued).
    alerts_poll_seconds: float = Field(default=1.0, gt=0, le=300)

    # --- email (alerts whose destination is email) --------------------------------------------
    # Empty host: email destinations cannot be saved (and nothing is sent).
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls: plain connection upgraded with STARTTLS (port 587); tls: TLS from the start
    # (port 465); none: no encryption (a relay on the same host or network only).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: SecretStr | None = None
    # The From address of alert emails; empty means alerts@<the public URL's host>.
    smtp_from: str = ""

    # --- web UI -----------------------------------------------------------------------------
    # How long a sign-in lasts without use; every visit pushes the end out again.
    ui_session_days: float = Field(default=14.0, gt=0)

    # --- browser SDKs -----------------------------------------------------------------------
    # A posthog-js installation (its dist/ folder) whose extension scripts, such as
    # exception-autocapture.js, browsers may lazy-load from /static/. Empty: none is served.
    posthog_js_dist: Path | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def local_folders(self) -> list[Path]:
        """The folders Trapline writes to on this machine: the data dir, the SQLite file's
        folder and the local object store's (what the disk watermark watches)."""
        folders = [self.data_dir]
        if self.is_sqlite:
            database = make_url(self.database_url).database
            if database and database != ":memory:":
                folders.append(Path(database).parent)
        if self.objects_folder is not None:
            folders.append(self.objects_folder)
        return folders

    @property
    def objects_folder(self) -> Path | None:
        """The local object store's folder (``file://`` URL); None for S3."""
        parts = urlsplit(self.object_store_url)
        return Path(url2pathname(parts.path)) if parts.scheme == "file" else None

    @property
    def smtp_sender(self) -> str:
        """The From address of alert emails."""
        if self.smtp_from:
            return self.smtp_from
        host = urlsplit(self.public_url).hostname or "localhost"
        return f"alerts@{host}"

    @property
    def base_url(self) -> str:
        """``public_url`` without a trailing slash."""
        return self.public_url.rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Read the environment, fill derived defaults, prepare the data dir and check safety."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    data_dir = settings.data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"TRAPLINE_DATA_DIR={data_dir} cannot be created: {exc.strerror}") from exc
    if not os.access(data_dir, os.W_OK):
        raise SettingsError(f"TRAPLINE_DATA_DIR={data_dir} is not writable by this user.")

    updates: dict[str, object] = {"data_dir": data_dir}
    updates["database_url"] = _database_url(settings.database_url, data_dir)
    updates["object_store_url"] = _object_store_url(settings.object_store_url, data_dir)
    updates["public_url"] = _public_url(settings.public_url, settings.host, settings.port)
    updates["secret_key"] = SecretStr(_secret_key(settings.secret_key, data_dir))
    updates["posthog_js_dist"] = _posthog_js_dist(settings.posthog_js_dist)
    settings = settings.model_copy(update=updates)
    _check_limits(settings)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()


# UPDATE/INSERT ... RETURNING, which the queue and the pipeline use, came in SQLite 3.35.
_MIN_SQLITE = (3, 35)


def _check_sqlite_version() -> None:
    if sqlite3.sqlite_version_info < _MIN_SQLITE:
        raise SettingsError(
            f"This Python's SQLite is {sqlite3.sqlite_version}; Trapline needs 3.35 or newer. Use a newer "
            "Python build, or PostgreSQL (TRAPLINE_DATABASE_URL=postgresql://user@host/dbname)."
        )


def _database_url(url: str, data_dir: Path) -> str:
    if not url:
        _check_sqlite_version()
        return f"sqlite:///{data_dir / 'trapline.db'}"
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SettingsError(f"TRAPLINE_DATABASE_URL is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend in {"postgres", "postgresql"}:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        _check_sqlite_version()
        database = parsed.database or ""
        if database in {"", ":memory:"} or parsed.query.get("mode") == "memory":
            raise SettingsError(
                "TRAPLINE_DATABASE_URL points at an in-memory SQLite database: every connection "
                "would see a different, empty database and accepted events would be lost on "
                "restart. Use a file, e.g. sqlite:////var/lib/trapline/trapline.db."
            )
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise SettingsError(
        f"TRAPLINE_DATABASE_URL uses the unsupported database {backend!r}: "
        "use sqlite:///path/to/file.db or postgresql://user@host/dbname."
    )


def _object_store_url(url: str, data_dir: Path) -> str:
    if not url:
        return (data_dir / "objects").as_uri()
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path:
        return url
    if parts.scheme == "s3" and parts.netloc:
        return url
    raise SettingsError(
        f"TRAPLINE_OBJECT_STORE_URL={url!r} is not supported: use file:///absolute/folder or "
        "s3://bucket/optional/prefix."
    )


def _posthog_js_dist(path: Path | None) -> Path | None:
    if path is None or str(path) == "":
        return None
    path = path.expanduser().resolve()
    # The package folder works as well as its dist/ folder.
    if (path / "dist" / "exception-autocapture.js").is_file():
        path = path / "dist"
    if not (path / "exception-autocapture.js").is_file():
        raise SettingsError(
            f"TRAPLINE_POSTHOG_JS_DIST={path} has no exception-autocapture.js: point it at an installed "
            "posthog-js (node_modules/posthog-js or its dist folder)."
        )
    return path


def _public_url(url: str, host: str, port: int) -> str:
    if not url:
        shown_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
        if ":" in shown_host:
            shown_host = f"[{shown_host}]"
        return f"http://{shown_host}:{port}"
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SettingsError(f"TRAPLINE_PUBLIC_URL={url!r} must be an absolute http(s) URL.")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise SettingsError(
            f"TRAPLINE_PUBLIC_URL={url!r} has a path; Trapline must be served at the root of its host "
            "because SDKs append fixed paths such as /batch/ and /api/."
        )
    return url.rstrip("/")


def _secret_key(given: SecretStr | None, data_dir: Path) -> str:
    if given is not None:
        value = given.get_secret_value()
        if value.lower() in _PLACEHOLDER_SECRETS or len(value) < _MIN_SECRET_LENGTH:
            raise SettingsError(
                f"TRAPLINE_SECRET_KEY is too weak: use at least {_MIN_SECRET_LENGTH} random characters "
                "(for example the output of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
                "or unset it to have one generated in the data dir."
            )
        return value
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SettingsError(
                f"{path} is readable by other users (mode {stat.filemode(mode)}); run `chmod 600 {path}`."
            )
        value = path.read_text().strip()
        if len(value) < _MIN_SECRET_LENGTH:
            raise SettingsError(f"{path} holds a secret shorter than {_MIN_SECRET_LENGTH} characters.")
        return value
    value = secrets.token_urlsafe(48)
    # Write a private temporary file, then hard-link it into place: the link fails if another
    # process that started at the same moment got there first, and then we use its key.
    tmp = data_dir / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        tmp.unlink()
    return value


def _check_limits(settings: Settings) -> None:
    if settings.api_body_max_size < 1024:
        raise SettingsError("TRAPLINE_API_BODY_MAX_SIZE must be at least 1KiB.")
    if settings.ingest_event_max_size < 1024:
        raise SettingsError("TRAPLINE_INGEST_EVENT_MAX_SIZE must be at least 1KiB.")
    if settings.ingest_body_max_size < settings.ingest_event_max_size:
        raise SettingsError("TRAPLINE_INGEST_BODY_MAX_SIZE must be at least TRAPLINE_INGEST_EVENT_MAX_SIZE.")
    if settings.ingest_decompressed_max_size < settings.ingest_body_max_size:
        raise SettingsError("TRAPLINE_INGEST_DECOMPRESSED_MAX_SIZE must be at least TRAPLINE_INGEST_BODY_MAX_SIZE.")
    if settings.sentry_event_max_size < 1024:
        raise SettingsError("TRAPLINE_SENTRY_EVENT_MAX_SIZE must be at least 1KiB.")
    if settings.sentry_envelope_max_size < settings.sentry_event_max_size:
        raise SettingsError("TRAPLINE_SENTRY_ENVELOPE_MAX_SIZE must be at least TRAPLINE_SENTRY_EVENT_MAX_SIZE.")
