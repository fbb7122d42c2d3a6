"""PostHog's symbol set upload protocol, as its CLI speaks it (and Trapline answers it).

Under ``{host}/api/projects/{project_id}/error_tracking/``, paths without a trailing slash:

1. ``GET releases/hash/{hash_id}``, then on 404 ``POST releases``: the release's id;
2. ``POST symbol_sets/bulk_check_upload``: which chunks the server still needs (older servers
   lack it: 403/404/405 mean "send everything");
3. ``POST symbol_sets/bulk_start_upload`` per batch: an upload form per chunk still needed
   (a chunk left out of ``id_map`` is already there);
4. ``POST`` each container to its form's URL as multipart, without the API key (it is usually
   S3's presigned POST);
5. ``POST symbol_sets/bulk_finish_upload``: the content hashes of what was uploaded.

API errors are ``{"type", "code", "detail", "attr"}``; ``release_id_mismatch`` (a chunk already
belongs to another release) is answered by retrying without release ids, as PostHog's CLI does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx

from trapline import __version__
from trapline.sourcemap.config import ApiConfig
from trapline.sourcemap.release import ReleaseSpec

__all__ = [
    "USER_AGENT",
    "Api",
    "ApiError",
    "ClientError",
    "ProtocolError",
    "SymbolSet",
    "Unreachable",
    "UploadFailed",
    "UploadForm",
    "UploadReport",
    "UploadTarget",
    "upload_symbol_sets",
]

USER_AGENT = f"trapline-sourcemap/{__version__}"
# Waits before the 2nd, 3rd and 4th attempt of an API call (network errors, 429, 5xx).
RETRY_DELAYS = (0.5, 1.0, 2.0)
UPLOAD_ATTEMPTS = 3
# The upload URL's fallback is tried after this many network errors on the main one.
FALLBACK_AFTER_FAILURES = 2
# bulk_check_upload only sends ids and hashes: PostHog's CLI checks up to 1000 at a time.
CHECK_BATCH_SIZE = 1000
API_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
# Status codes a server may answer to an endpoint it does not have.
_UNSUPPORTED = frozenset({403, 404, 405})


class ClientError(Exception):
    """Talking to the server failed; the message is for people."""


class Unreachable(ClientError):
    """The host did not answer (DNS, refused connection, TLS, timeout)."""


class ProtocolError(ClientError):
    """The server answered something the protocol does not allow."""


class UploadFailed(ClientError):
    """One container could not be posted to its upload URL."""


class ApiError(ClientError):
    def __init__(self, message: str, *, status: int, code: str | None, detail: str, attr: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail
        self.attr = attr


@dataclass(frozen=True)
class SymbolSet:
    """One chunk to upload; the container is read only when it is sent."""

    chunk_id: str
    release_id: str | None
    content_hash: str
    content_length: int
    label: str
    read: Callable[[], bytes] = field(repr=False, compare=False)


@dataclass(frozen=True)
class UploadForm:
    url: str
    fields: dict[str, str]


@dataclass(frozen=True)
class UploadTarget:
    symbol_set_id: str
    form: UploadForm
    fallback: UploadForm | None = None


@dataclass
class UploadReport:
    uploaded: list[SymbolSet] = field(default_factory=list)
    present: list[SymbolSet] = field(default_factory=list)
    failed: list[tuple[SymbolSet, str]] = field(default_factory=list)


class Api:
    """The error tracking endpoints of one project, with retries and readable errors."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        notify: Callable[[str], None] = lambda message: None,
    ) -> None:
        self._config = config
        self._sleep = sleep
        self._notify = notify
        # No Authorization here: the upload URLs must not receive the API key.
        self._http = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            timeout=API_TIMEOUT,
            verify=config.verify_ssl,
            transport=transport,
        )
        self._auth = {"Authorization": f"Bearer {config.api_key}"}
        self.without_releases = False

    def __enter__(self) -> Api:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- releases --------------------------------------------------------------------------

    def release(self, spec: ReleaseSpec) -> tuple[str, bool]:
        """The id of the release, created if the server has none with its hash; and whether it was."""
        found = self._request("GET", f"releases/hash/{spec.hash_id}")
        if found.is_success:
            return _release_id(found), False
        if found.status_code != 404:
            raise self._error(found, "GET", "releases/hash")
        body: dict[str, Any] = {"hash_id": spec.hash_id, "version": spec.version, "project": spec.project}
        if spec.metadata:
            body["metadata"] = spec.metadata
        created = self._request("POST", "releases", body)
        if created.is_success:
            return _release_id(created), True
        if created.status_code == 400:  # another build created it in the meantime ("already in use")
            again = self._request("GET", f"releases/hash/{spec.hash_id}")
            if again.is_success:
                return _release_id(again), False
        raise self._error(created, "POST", "releases")

    # --- symbol sets -----------------------------------------------------------------------

    def check_upload(self, sets: Sequence[SymbolSet]) -> list[SymbolSet]:
        """The sets the server still needs; all of them if it cannot tell."""
        needed: list[SymbolSet] = []
        for start in range(0, len(sets), CHECK_BATCH_SIZE):
            batch = sets[start : start + CHECK_BATCH_SIZE]
            response = self._with_release_fallback(
                partial(self._symbol_sets, "bulk_check_upload", batch, with_length=False)
            )
            if response is None:
                return list(sets)
            wanted = _string_list(response, "chunk_ids_to_upload")
            needed += [symbol_set for symbol_set in batch if symbol_set.chunk_id in wanted]
        return needed

    def start_upload(self, sets: Sequence[SymbolSet]) -> dict[str, UploadTarget]:
        """Upload forms by chunk id, for the sets the server does not have yet."""
        body = self._with_release_fallback(partial(self._symbol_sets, "bulk_start_upload", sets, with_length=True))
        if body is None:
            raise AssertionError("bulk_start_upload errors are raised, not degraded")
        id_map = body.get("id_map")
        if not isinstance(id_map, dict):
            raise ProtocolError('bulk_start_upload answered without an "id_map" object')
        asked = {symbol_set.chunk_id for symbol_set in sets}
        targets: dict[str, UploadTarget] = {}
        for chunk_id, entry in id_map.items():
            if chunk_id not in asked:
                raise ProtocolError(f"bulk_start_upload answered for chunk id {chunk_id}, which was not sent")
            targets[chunk_id] = _target(chunk_id, entry)
        return targets

    def upload(self, target: UploadTarget, data: bytes) -> None:
        """Post one container to its upload form: fields first, then the ``file`` part."""
        error = ""
        network_failures = 0
        for attempt in range(UPLOAD_ATTEMPTS):
            use_fallback = target.fallback is not None and network_failures >= FALLBACK_AFTER_FAILURES
            form = target.fallback if use_fallback and target.fallback else target.form
            url = urljoin(self._config.host + "/", form.url)
            try:
                response = self._http.post(
                    url,
                    data=form.fields,
                    files={"file": ("file", data, "application/octet-stream")},
                    timeout=UPLOAD_TIMEOUT,
                )
            except httpx.TransportError as exc:
                network_failures += 1
                error = f"cannot reach the upload URL {_origin(url)}: {_reason(exc)}"
            else:
                if response.is_success:
                    return
                error = f"the upload URL answered {response.status_code}: {_short(response.text)}"
                if not _retryable(response.status_code):
                    break
            if attempt + 1 < UPLOAD_ATTEMPTS:
                self._sleep(RETRY_DELAYS[attempt])
        raise UploadFailed(error)

    def finish_upload(self, content_hashes: dict[str, str]) -> None:
        response = self._request("POST", "symbol_sets/bulk_finish_upload", {"content_hashes": content_hashes})
        if not response.is_success:
            raise self._error(response, "POST", "symbol_sets/bulk_finish_upload")

    # --- plumbing --------------------------------------------------------------------------

    def _symbol_sets(self, action: str, sets: Sequence[SymbolSet], *, with_length: bool) -> dict[str, Any] | None:
        entries = []
        for symbol_set in sets:
            entry: dict[str, Any] = {
                "chunk_id": symbol_set.chunk_id,
                "release_id": None if self.without_releases else symbol_set.release_id,
                "content_hash": symbol_set.content_hash,
            }
            if with_length:
                entry["content_length"] = symbol_set.content_length
            entries.append(entry)
        body = {"symbol_sets": entries, "force": False, "skip_on_conflict": False}
        path = f"symbol_sets/{action}"
        response = self._request("POST", path, body)
        if response.is_success:
            return _json_object(response, path)
        error = self._error(response, "POST", path)
        if action != "bulk_check_upload" or error.code == "release_id_mismatch" or not _degrades(error.status):
            raise error
        # Only an optimisation: bulk_start_upload says again what it does not need.
        if error.status in _UNSUPPORTED:
            self._notify(f"The server has no bulk_check_upload ({error.status}): asking about every symbol set")
        else:
            self._notify(f"bulk_check_upload failed ({error.status}: {error.detail}): asking about every symbol set")
        return None

    def _with_release_fallback(self, call: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        try:
            return call()
        except ApiError as error:
            if error.code != "release_id_mismatch" or self.without_releases:
                raise
            self._notify(f"A chunk belongs to another release ({error.detail}): retrying without release ids")
            self.without_releases = True
            return call()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        url = f"{self._config.project_url}/error_tracking/{path}"
        for delay in (*RETRY_DELAYS, None):
            try:
                response = self._http.request(method, url, json=body, headers=self._auth)
            except httpx.TransportError as exc:
                if delay is None:
                    raise Unreachable(f"cannot reach {self._config.host}: {_reason(exc)}") from exc
            else:
                if delay is None or not _retryable(response.status_code):
                    return response
            self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _error(self, response: httpx.Response, method: str, path: str) -> ApiError:
        code, detail, attr = _error_fields(response)
        status = response.status_code
        if status == 401:
            message = f"the API key is invalid ({detail})"
        elif status == 403:
            message = (
                f"the API key is not allowed to do this: {detail} (it needs the error_tracking:write scope "
                f"and access to project {self._config.project_id})"
            )
        elif status == 404 and not path.startswith("releases/hash"):
            message = (
                f"{method} {path}: not found ({detail}). Check the project id ({self._config.project_id}) and "
                "that the server supports symbol set uploads"
            )
        else:
            message = f"{method} {path} answered {status}: {detail}"
        return ApiError(message, status=status, code=code, detail=detail, attr=attr)


def upload_symbol_sets(
    api: Api, sets: Sequence[SymbolSet], *, batch_size: int, progress: Callable[[str], None]
) -> UploadReport:
    """Check, then start, upload and finish in batches; one failed file does not stop the rest."""
    report = UploadReport()
    progress(f"Checking {len(sets)} symbol set(s) with the server")
    needed = api.check_upload(sets)
    needed_ids = {symbol_set.chunk_id for symbol_set in needed}
    report.present += [symbol_set for symbol_set in sets if symbol_set.chunk_id not in needed_ids]
    if report.present:
        progress(f"{len(report.present)} symbol set(s) already on the server")
    batches = [needed[start : start + batch_size] for start in range(0, len(needed), batch_size)]
    done = 0
    for number, batch in enumerate(batches, 1):
        progress(f"Batch {number}/{len(batches)}: {len(batch)} symbol set(s)")
        targets = api.start_upload(batch)
        hashes: dict[str, str] = {}
        for symbol_set in batch:
            target = targets.get(symbol_set.chunk_id)
            if target is None:
                report.present.append(symbol_set)
                progress(f"Skipped {symbol_set.label}: already on the server")
                continue
            try:
                api.upload(target, symbol_set.read())
            except (UploadFailed, OSError) as exc:
                report.failed.append((symbol_set, str(exc)))
                progress(f"Failed {symbol_set.label}: {exc}")
                continue
            hashes[target.symbol_set_id] = symbol_set.content_hash
            report.uploaded.append(symbol_set)
            done += 1
            progress(f"Uploaded {done}/{len(needed)} {symbol_set.label}")
        if hashes:
            api.finish_upload(hashes)
    return report


def _target(chunk_id: str, entry: Any) -> UploadTarget:
    if not isinstance(entry, dict) or not isinstance(entry.get("symbol_set_id"), str):
        raise ProtocolError(f"bulk_start_upload gave chunk {chunk_id} no symbol_set_id")
    form = _form(entry.get("presigned_url"))
    if form is None:
        raise ProtocolError(f"bulk_start_upload gave chunk {chunk_id} no presigned_url with a url")
    return UploadTarget(entry["symbol_set_id"], form, _form(entry.get("fallback_presigned_url")))


def _form(value: Any) -> UploadForm | None:
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        return None
    fields = value.get("fields") or {}
    if not isinstance(fields, dict):
        return None
    return UploadForm(value["url"], {str(key): str(item) for key, item in fields.items()})


def _release_id(response: httpx.Response) -> str:
    body = _json_object(response, "releases")
    if not isinstance(body.get("id"), str):
        raise ProtocolError('the release answer has no "id"')
    return str(body["id"])


def _json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProtocolError(f"{path} answered {response.status_code} without a JSON object")
    return body


def _string_list(body: dict[str, Any] | None, key: str) -> set[str]:
    value = body.get(key) if body else None
    if not isinstance(value, list):
        raise ProtocolError(f'bulk_check_upload answered without a "{key}" list')
    return {item for item in value if isinstance(item, str)}


def _error_fields(response: httpx.Response) -> tuple[str | None, str, str | None]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("detail"):
        code = body.get("code")
        attr = body.get("attr")
        return (
            str(code) if code is not None else None,
            str(body["detail"]),
            str(attr) if attr is not None else None,
        )
    return None, _short(response.text) or response.reason_phrase or str(response.status_code), None


def _degrades(status: int) -> bool:
    """A bulk_check_upload failure that means "ask bulk_start_upload instead"."""
    return 400 <= status < 500 and status != 401


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def _reason(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
