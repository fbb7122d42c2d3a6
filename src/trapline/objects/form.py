"""The body of a presigned POST, read as it arrives: fields first, then the file, streamed.

S3's rules: every field is a text part before the file part named ``file``; what follows the
file is ignored. The signature is checked as soon as the file part starts, so nothing of an
unsigned upload is ever stored, and the file is counted as it comes, so an upload is refused
the moment it passes its signed limit rather than once it has all arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from trapline.errors import MalformedBody, PayloadTooLarge
from trapline.objects.local import UploadGrant

__all__ = ["UploadForm"]

# Part headers and text fields, all parts together. Ours are a few hundred bytes and S3 allows
# a 20 KB policy; the bound keeps a body of endless small fields from filling memory.
_FORM_OVERHEAD_MAX = 64 * 1024
_TOO_LARGE = "Your proposed upload exceeds the maximum allowed size."


class _Part(Enum):
    TEXT = "text"
    FILE = "file"
    IGNORED = "ignored"  # S3 ignores what follows the file; so do we, within the overhead bound


class UploadForm:
    """Reads a presigned POST body chunk by chunk; returns the file's bytes as they come.

    python-multipart calls back from inside ``write``; the callbacks only record events, and
    ``feed`` acts on them afterwards, so an error is raised from ``feed``, not from the parser.
    """

    def __init__(
        self, boundary: bytes, check: Callable[[Mapping[str, str]], UploadGrant], content_length: int | None
    ) -> None:
        self._check = check
        self._content_length = content_length
        self._events: list[tuple[str, bytes]] = []
        self.fields: dict[str, str] = {}
        self.grant: UploadGrant | None = None
        self.done = False
        self._part = _Part.IGNORED
        self._name = ""
        self._value = bytearray()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._overhead = 0
        self._file_size = 0
        self._max_size = 0
        self._file_seen = False
        record = self._events.append
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": lambda: record(("part_begin", b"")),
                    "on_header_field": lambda data, start, end: record(("header_field", data[start:end])),
                    "on_header_value": lambda data, start, end: record(("header_value", data[start:end])),
                    "on_header_end": lambda: record(("header_end", b"")),
                    "on_headers_finished": lambda: record(("headers_finished", b"")),
                    "on_part_data": lambda data, start, end: record(("data", data[start:end])),
                    "on_part_end": lambda: record(("part_end", b"")),
                    "on_end": lambda: record(("end", b"")),
                },
            )
        except FormParserError as exc:  # a boundary longer than multipart allows
            raise MalformedBody(f"Malformed multipart body: {exc}") from exc

    def feed(self, chunk: bytes) -> bytes:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise MalformedBody(f"Malformed multipart body: {exc}") from exc
        events = self._events.copy()
        self._events.clear()
        out: list[bytes] = []
        for kind, data in events:
            if self.done:
                break
            if kind == "data" and self._part is _Part.FILE:
                self._file_size += len(data)
                if self._file_size > self._max_size:
                    raise PayloadTooLarge(_TOO_LARGE)
                out.append(data)
            elif kind == "data":
                self._count(data)
                if self._part is _Part.TEXT:
                    self._value += data
            elif kind == "header_field":
                self._count(data)
                self._header_field += data
            elif kind == "header_value":
                self._count(data)
                self._header_value += data
            elif kind == "header_end":
                if bytes(self._header_field).lower() == b"content-disposition":
                    self._disposition = bytes(self._header_value)
                self._header_field.clear()
                self._header_value.clear()
            elif kind == "part_begin":
                self._disposition = b""
                self._value.clear()
            elif kind == "headers_finished":
                self._start_part()
            elif kind == "part_end":
                self._end_part()
            elif kind == "end":
                self.done = True
        return b"".join(out)

    def finish(self) -> UploadGrant:
        """The grant the completed form was uploaded under; the body must have ended cleanly."""
        if not self.done:
            raise MalformedBody("The body ended before the multipart form did.")
        if self.grant is None:
            raise MalformedBody("POST requires exactly one file upload per request.")
        return self.grant

    def _count(self, data: bytes) -> None:
        self._overhead += len(data)
        if self._overhead > _FORM_OVERHEAD_MAX:
            raise PayloadTooLarge("The form's fields are too large.")

    def _start_part(self) -> None:
        kind, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if kind != b"form-data" or name is None:
            raise MalformedBody("Every part needs a Content-Disposition: form-data header with a name.")
        self._name = name.decode("utf-8", "replace")
        if self._file_seen:
            self._part = _Part.IGNORED
        elif self._name == "file":
            self._file_seen = True
            self._part = _Part.FILE
            # The fields came first (S3 needs them to); without a valid signature nothing is stored.
            self.grant = self._check(self.fields)
            self._max_size = self.grant.max_size
            if self._content_length is not None and self._content_length > self.grant.max_size + 2 * _FORM_OVERHEAD_MAX:
                raise PayloadTooLarge(_TOO_LARGE)
        else:
            self._part = _Part.TEXT

    def _end_part(self) -> None:
        if self._part is _Part.TEXT:
            if self._name in self.fields:
                # Two values for one name: which one was signed would depend on who reads it.
                raise MalformedBody(f"The field {self._name!r} appears more than once.")
            try:
                self.fields[self._name] = self._value.decode()
            except UnicodeDecodeError as exc:
                raise MalformedBody(f"The field {self._name!r} is not UTF-8 text.") from exc
        self._part = _Part.IGNORED
