"""Source map ``mappings``: the base64 VLQ codec and the edits ``inject`` needs.

A ``mappings`` string has one group per generated line, separated by ``;``; a group holds
segments separated by ``,``. A segment has 1 field (an unmapped generated column), 4 (column,
source, original line, original column) or 5 (plus a name). The generated column is relative to
the previous segment *on the same line*; the other fields are relative to their previous
occurrence *anywhere before*, across lines. That second rule is what lets ``insert_lines`` and
``insert_columns`` edit one spot without re-encoding the rest.

Decoded segments here are tuples of absolute values: ``(column,)``, ``(column, source, line,
original_column)`` or the same plus ``name``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "MappingsError",
    "Segment",
    "decode",
    "decode_values",
    "encode",
    "encode_values",
    "insert_columns",
    "insert_lines",
]

Segment = tuple[int, ...]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DIGITS = {char: value for value, char in enumerate(_ALPHABET)}
_CONTINUE = 32
_MASK = 31


class MappingsError(ValueError):
    """The ``mappings`` string is not valid base64 VLQ."""


def decode_values(text: str) -> list[int]:
    """The signed integers one VLQ segment (``"AAgBC"``) encodes."""
    values: list[int] = []
    value = shift = 0
    for char in text:
        digit = _DIGITS.get(char)
        if digit is None:
            raise MappingsError(f"invalid character {char!r} in mappings")
        value += (digit & _MASK) << shift
        if digit & _CONTINUE:
            shift += 5
        else:
            values.append(-(value >> 1) if value & 1 else value >> 1)
            value = shift = 0
    if shift:
        raise MappingsError(f"truncated segment {text!r} in mappings")
    return values


def encode_values(values: Iterable[int]) -> str:
    """One VLQ segment for these signed integers."""
    out: list[str] = []
    for value in values:
        vlq = ((-value) << 1) | 1 if value < 0 else value << 1
        while True:
            digit = vlq & _MASK
            vlq >>= 5
            if vlq:
                out.append(_ALPHABET[digit | _CONTINUE])
            else:
                out.append(_ALPHABET[digit])
                break
    return "".join(out)


def decode(mappings: str) -> list[list[Segment]]:
    """Every generated line's segments, with absolute values."""
    lines: list[list[Segment]] = []
    source = line = column = name = 0
    for group in mappings.split(";"):
        segments: list[Segment] = []
        generated = 0
        for text in group.split(","):
            if not text:  # tolerated: ",," and an empty group
                continue
            values = decode_values(text)
            generated += values[0] if values else 0
            if len(values) == 1:
                segments.append((generated,))
            elif len(values) in (4, 5):
                source += values[1]
                line += values[2]
                column += values[3]
                if len(values) == 5:
                    name += values[4]
                    segments.append((generated, source, line, column, name))
                else:
                    segments.append((generated, source, line, column))
            else:
                raise MappingsError(f"segment {text!r} has {len(values)} fields (1, 4 or 5 expected)")
        lines.append(segments)
    return lines


def encode(lines: Sequence[Sequence[Segment]]) -> str:
    """The ``mappings`` string for absolute segments (the inverse of ``decode``)."""
    groups: list[str] = []
    source = line = column = name = 0
    for segments in lines:
        parts: list[str] = []
        generated = 0
        for segment in segments:
            values = [segment[0] - generated]
            generated = segment[0]
            if len(segment) >= 4:
                values += [segment[1] - source, segment[2] - line, segment[3] - column]
                source, line, column = segment[1], segment[2], segment[3]
                if len(segment) == 5:
                    values.append(segment[4] - name)
                    name = segment[4]
            parts.append(encode_values(values))
        groups.append(",".join(parts))
    return ";".join(groups)


def insert_lines(mappings: str, line: int, count: int = 1) -> str:
    """The mappings after ``count`` unmapped lines were inserted before generated ``line``.

    Inserting empty groups changes no relative value, so the rest is copied as is.
    """
    start = _group_start(mappings, line)
    if start is None:  # nothing is mapped at or after that line
        return mappings
    return mappings[:start] + ";" * count + mappings[start:]


def insert_columns(mappings: str, line: int, column: int, width: int) -> str:
    """The mappings after ``width`` unmapped columns were inserted at (``line``, ``column``).

    Segments are decoded only up to the first one at or after the insertion point: its
    generated-column delta grows by ``width``, and every later delta stays the same, so the
    rest of the string (a minified bundle's one long line, too) is copied as is.

    A segment that started before the insertion point and covered it is cut there with an
    unmapped segment, and resumes after the inserted text. The resumed copy repeats its source
    fields, so it encodes as zero deltas and what follows keeps its encoding.
    """
    start = _group_start(mappings, line)
    if start is None:
        return mappings
    end = mappings.find(";", start)
    end = len(mappings) if end == -1 else end

    generated = 0  # absolute column of the last segment before the insertion point
    covering: list[int] = []  # that segment's other fields (empty: unmapped, or none)
    after: tuple[int, int, list[int]] | None = None  # first segment at or after: span and values
    position = start
    while position < end:
        comma = mappings.find(",", position, end)
        stop = end if comma == -1 else comma
        if stop > position:  # ",," is tolerated
            values = decode_values(mappings[position:stop])
            if generated + values[0] >= column:
                after = (position, stop, values)
                break
            generated += values[0]
            covering = values[1:]
        position = stop + 1

    pieces: list[str] = []
    previous = generated
    if covering:
        pieces.append(encode_values([column - previous]))
        previous = column
        if after is None or generated + after[2][0] > column:
            pieces.append(encode_values([column + width - previous, *[0] * len(covering)]))
            previous = column + width
    if after is not None:
        segment_start, segment_stop, values = after
        moved = generated + values[0] + width
        pieces.append(encode_values([moved - previous, *values[1:]]))
        return mappings[:segment_start] + ",".join(pieces) + mappings[segment_stop:]
    if not pieces:
        return mappings
    separator = "," if end > start else ""
    return mappings[:end] + separator + ",".join(pieces) + mappings[end:]


def _group_start(mappings: str, line: int) -> int | None:
    """Offset of generated ``line``'s group in ``mappings``, or None past the last group."""
    offset = 0
    for _ in range(line):
        found = mappings.find(";", offset)
        if found == -1:
            return None
        offset = found + 1
    return offset
