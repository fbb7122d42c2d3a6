"""Search summaries, pure: trigram Bloom filters and common text parts, and what they say
about a search.

A search token matches an event when it is a substring of one of the event's search text
parts (``pipeline.storage.search_text``). If the token is a substring, each of its trigrams
is one of the text's, so a fingerprint whose filter lacks one of them has no matching event
(``could_match``); a token inside a part every event of the fingerprint had matches them
all (``all_match``). Anything between is read from the events.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

__all__ = [
    "BITS",
    "all_match",
    "has_bits",
    "mask_of",
    "parts_of",
    "sql_all_match",
    "sql_could_match",
    "sql_has_bits",
    "token_bits",
    "token_mask",
]

BITS = 4096
SEPARATOR = "\x1f"
_LOW = BITS - 1


@lru_cache(maxsize=65_536)
def _trigram_mask(trigram: str) -> int:
    # Two bits per trigram from one CRC: stable across processes (unlike hash()), and cached
    # because the same trigrams recur in nearly every text.
    h = zlib.crc32(trigram.encode("utf-8", "surrogatepass"))
    return (1 << (h & _LOW)) | (1 << ((h >> 12) & _LOW))


def _trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def mask_of(texts: Iterable[str]) -> int:
    """The filter bits of all trigrams of ``texts`` (each a whole search text)."""
    grams: set[str] = set()
    for text in texts:
        grams |= _trigrams(text)
    mask = 0
    for gram in grams:
        mask |= _trigram_mask(gram)
    return mask


def token_mask(token: str) -> int:
    """The bits a token's trigrams need (0 for tokens under three characters: they rule
    nothing out)."""
    return mask_of([token]) if len(token) >= 3 else 0


def parts_of(text: str) -> frozenset[str]:
    return frozenset(part for part in text.split(SEPARATOR) if part)


def joined(parts: Iterable[str]) -> str:
    """Common parts as stored: one text a token is inside exactly when it is inside a part."""
    return SEPARATOR.join(sorted(parts))


def token_bits(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """The (byte, bit) of the stored filter that every token's trigrams need, in the order a
    database tests them: the tokens' first trigrams first. Names and messages share their
    endings ("…error", "…exception") far more than their beginnings, so a fingerprint that
    cannot match usually fails the first tests (SQLite at 10,000 fingerprints, "typeerror":
    8 ms where the bits in index order took 12)."""
    width = BITS // 8
    seen: set[int] = set()
    found = []
    for position in range(max((len(token) for token in tokens), default=0) - 2):
        for token in tokens:
            if position + 3 > len(token):
                continue
            mask = _trigram_mask(token[position : position + 3])
            while mask:  # its set bits only
                lowest = mask & -mask
                bit = lowest.bit_length() - 1
                mask ^= lowest
                if bit not in seen:
                    seen.add(bit)
                    found.append((width - 1 - bit // 8, 1 << (bit % 8)))
    return found


def has_bits(stored: bytes | memoryview | None, bits: Sequence[tuple[int, int]]) -> bool:
    """Whether a stored filter has every bit: the definition ``sql_has_bits`` is tested against
    (queries ask the database, which need not carry the filters into Python)."""
    if not stored:
        return not bits
    return all(stored[index] & bit for index, bit in bits)


# Per bit of a byte, every byte value with that bit set, as an SQLite blob literal: SQLite has
# no bit operations on blobs, but instr() finds a filter's byte among these in C.
_BYTES_WITH = {1 << b: "X'" + "".join(f"{v:02x}" for v in range(256) if v >> b & 1) + "'" for b in range(8)}


def sql_has_bits(bits: Sequence[tuple[int, int]], dialect: str, column: str = "trigrams") -> str:
    """An SQL condition true where the stored filter in ``column`` has every bit, so that the
    database, not Python, rules out the fingerprints a search cannot match. A filter not yet
    filled (no events) may pass on SQLite; it then matches no event when read."""
    if not bits:
        return "1 = 1"
    if dialect == "postgresql":
        tests = " AND ".join(f"get_byte({column}, {index}) & {bit} <> 0" for index, bit in bits)
        return f"CASE WHEN length({column}) = {BITS // 8} THEN {tests} ELSE false END"
    tests = " AND ".join(f"instr({_BYTES_WITH[bit]}, substr({column}, {index + 1}, 1)) > 0" for index, bit in bits)
    return f"length({column}) = {BITS // 8} AND {tests}"


def all_match(common: str, tokens: Sequence[str]) -> bool:
    """Whether every event whose common parts are ``common`` (joined) holds every token."""
    return all(token in common for token in tokens if SEPARATOR not in token)


def sql_could_match(tokens: Sequence[str], dialect: str, every: str, column: str = "trigrams") -> str:
    """An SQL condition true where the events of a fingerprint could match: its filter has the
    search's bits (``sql_has_bits``), or ``every`` (an ``sql_all_match`` test, or a column
    holding its result) holds, which implies them: tested first, it is cheap, and true for the
    fingerprints a search is usually after, whose filters then need not be tested bit by bit.
    Tokens ``all_match`` does not test (holding a separator) leave the filter alone."""
    has_bits = sql_has_bits(token_bits(tokens), dialect, column)
    if any(SEPARATOR in token for token in tokens):
        return has_bits
    return f"(({every}) OR ({has_bits}))"


def sql_all_match(tokens: Sequence[str], dialect: str, mark: Callable[[int], str]) -> tuple[str, list[str]]:
    """``all_match`` as an SQL condition on the ``common`` column (false where it is NULL),
    and the tokens it binds: ``mark(i)`` spells the i-th placeholder. Substrings, case and
    all, as Python's ``in``."""
    needed = [token for token in tokens if SEPARATOR not in token]
    find = "strpos" if dialect == "postgresql" else "instr"
    tests = [f"{find}(common, {mark(i)}) > 0" for i in range(len(needed))]
    return " AND ".join(["common IS NOT NULL", *tests]), needed


def to_bytes(mask: int) -> bytes:
    return mask.to_bytes(BITS // 8, "big")


def from_bytes(data: bytes | memoryview | None) -> int:
    return int.from_bytes(data, "big") if data else 0
