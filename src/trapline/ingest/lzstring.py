"""LZ-string's ``decompressFromBase64``, for the legacy ``?compression=lz64`` bodies of old posthog-js.

LZ-string (pieroxy/lz-string) is an LZW variant over UTF-16 code units. The compressed form is
a bit stream: codes of a width that grows with the dictionary, each read least significant bit
first. Codes 0 and 1 introduce a new 8- or 16-bit character, 2 ends the stream, and anything
higher names a dictionary entry. ``compressToBase64`` packs that stream six bits per character
(most significant bit first) into the usual base64 alphabet, with ``=`` padding.

Only decompression is needed: no current SDK sends lz64, but PostHog still accepts it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["LZStringError", "LZStringTooLarge", "decompress_from_base64"]

_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_INVALID: Final = 0xFF
# bytes.translate maps each input character to its 6-bit value in one C-speed pass; '=' maps
# to 64, whose bits lie above the six that are read, so padding reads as zeros (as in lz-string).
_VALUES: Final = bytes(_ALPHABET.index(b) if b in _ALPHABET else _INVALID for b in range(256))
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class LZStringError(ValueError):
    """The input is not an LZ-string ``compressToBase64`` payload; the message says why."""


class LZStringTooLarge(LZStringError):
    """The decompressed text would be longer than the caller's limit."""


class _Bits:
    """Reads the bit stream as lz-string does: characters MSB first, codes assembled LSB first."""

    __slots__ = ("index", "position", "value", "values")

    def __init__(self, values: bytes) -> None:
        self.values = values
        self.value = values[0]
        self.position = 32
        self.index = 1  # of the next character to load

    def read(self, width: int) -> int:
        values, value, position, index = self.values, self.value, self.position, self.index
        result = 0
        power = 1
        end = 1 << width
        while power != end:
            if value & position:
                result |= power
            position >>= 1
            if not position:
                position = 32
                # Past the end lz-string reads zeros; the caller's index check stops runaway loops.
                value = values[index] if index < len(values) else 0
                index += 1
            power <<= 1
        self.value, self.position, self.index = value, position, index
        return result


def decompress_from_base64(data: str | bytes, *, max_length: int) -> str:
    """Decompress an lz-string ``compressToBase64`` payload into text.

    ``max_length`` bounds the output in UTF-16 code units (the unit lz-string counts), so a
    small input cannot expand without limit; exceeding it raises ``LZStringTooLarge``.
    Surrogate pairs are joined; a lone surrogate becomes U+FFFD, so the result always encodes
    as UTF-8.
    """
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    values = raw.translate(_VALUES)
    if not values:
        raise LZStringError("the input is empty")
    if _INVALID in values:
        position = values.index(_INVALID)
        raise LZStringError(f"character {raw[position : position + 1]!r} at offset {position} is not base64")

    bits = _Bits(values)
    length = len(values)
    first = bits.read(2)
    if first == 2:
        return ""
    if first == 3:
        raise LZStringError("the stream does not start with a character code")
    w = chr(bits.read(8 if first == 0 else 16))
    # Entries 0-2 stand for the three control codes and are never looked up.
    dictionary = ["", "", "", w]
    parts = [w]
    total = 1
    enlarge_in = 4
    width = 3
    while True:
        if bits.index > length:
            raise LZStringError("the input ends before the end-of-stream code")
        code = bits.read(width)
        if code == 2:
            break
        if code < 2:
            dictionary.append(chr(bits.read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in = 1 << width
                width += 1
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            # The LZW corner case: the code being defined by this very step.
            entry = w + w[0]
        else:
            raise LZStringError(f"code {code} refers past the end of the dictionary ({len(dictionary)} entries)")
        total += len(entry)
        if total > max_length:
            raise LZStringTooLarge(f"the decompressed text is longer than {max_length} characters")
        parts.append(entry)
        dictionary.append(w + entry[0])
        enlarge_in -= 1
        w = entry
        if enlarge_in == 0:
            enlarge_in = 1 << width
            width += 1

    text = "".join(parts)
    if _SURROGATE.search(text) is None:
        return text
    # JavaScript strings are UTF-16 code units: re-pair surrogates the way a JS engine would.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
