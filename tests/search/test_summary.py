"""Search summaries, pure: a filter never rules out a text that holds the token, and common
parts say "every event matches" only when each does."""

from __future__ import annotations

import sqlite3

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import LargeBinary, String, literal, select, text

from trapline.db.engine import Database
from trapline.search import summary

_SEP = summary.SEPARATOR
_texts = st.lists(st.text(alphabet="abcdeé.:_ ", min_size=0, max_size=12), min_size=1, max_size=4).map(_SEP.join)


@given(texts=st.lists(_texts, min_size=1, max_size=5), pick=st.integers(0, 100), start=st.integers(0, 20),
       length=st.integers(0, 8))  # fmt: skip
def test_a_token_inside_any_text_is_never_ruled_out(texts: list[str], pick: int, start: int, length: int):
    text = texts[pick % len(texts)]
    token = text[start : start + length]
    if _SEP in token:
        return  # a token never spans two fields: the tokenizer splits on whitespace only
    stored = summary.to_bytes(summary.mask_of(texts))
    assert summary.has_bits(stored, summary.token_bits([token]))


def test_a_token_missing_from_every_text_is_usually_ruled_out():
    stored = summary.to_bytes(summary.mask_of(["keyerror\x1fmissing key 'total'\x1fcheckout.py"]))
    assert summary.has_bits(stored, summary.token_bits(["keyerror"]))
    assert not summary.has_bits(stored, summary.token_bits(["zerodivision"]))
    assert not summary.has_bits(stored, summary.token_bits(["keyerror", "timeout"]))  # all tokens must fit
    # Tokens under three characters have no trigram: they rule nothing out.
    assert summary.has_bits(stored, summary.token_bits(["zz"]))
    assert not summary.has_bits(b"", summary.token_bits(["keyerror"]))  # no events, no match


@given(tokens=st.lists(st.text(max_size=12), max_size=3))
def test_a_searchs_bits_are_exactly_its_tokens_trigram_bits(tokens: list[str]):
    mask = 0
    for token in tokens:
        mask |= summary.token_mask(token)
    # A filter with exactly those bits has them all; one missing any single bit does not.
    assert summary.has_bits(summary.to_bytes(mask), summary.token_bits(tokens))
    for index, bit in summary.token_bits(tokens):
        without = bytearray(summary.to_bytes(mask))
        without[index] &= ~bit
        assert not summary.has_bits(bytes(without), summary.token_bits(tokens))
    assert len(summary.token_bits(tokens)) == mask.bit_count()


@given(texts=st.lists(_texts, min_size=1, max_size=5), token=st.text(alphabet="abcdeé.:_ ", max_size=4))
def test_all_match_only_when_every_text_holds_every_token(texts: list[str], token: str):
    common = summary.joined(frozenset.intersection(*(summary.parts_of(t) for t in texts)))
    if summary.all_match(common, [token]):
        assert all(token in text for text in texts)


def test_common_parts_are_whole_fields():
    texts = ["typeerror\x1fboom", "typeerror\x1fbang"]
    common = summary.joined(frozenset.intersection(*(summary.parts_of(t) for t in texts)))
    assert summary.parts_of(common) == {"typeerror"}
    assert summary.all_match(common, ["type", "error"])
    assert not summary.all_match(common, ["boom"])


@given(texts=st.lists(_texts, min_size=0, max_size=3), token=st.text(alphabet="abcdeé.:_ ", max_size=5))
def test_the_databases_bit_test_agrees_with_pythons(texts: list[str], token: str):
    stored = summary.to_bytes(summary.mask_of(texts)) if texts else b""
    bits = summary.token_bits([token])
    with sqlite3.connect(":memory:") as connection:
        [(found,)] = connection.execute(
            f"SELECT count(*) FROM (SELECT ? AS trigrams) WHERE {summary.sql_has_bits(bits, 'sqlite')}", (stored,)
        ).fetchall()
    # An empty filter (a fingerprint with no events yet) may pass: its events are then read.
    assert bool(found) == summary.has_bits(stored, bits) or (not stored and not bits)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    common=st.one_of(st.none(), _texts),
    tokens=st.lists(st.text(alphabet="abcdeÉé.:_%'\\ " + _SEP, max_size=4), max_size=3),
)
def test_the_databases_common_parts_test_agrees_with_pythons(database: Database, common: str | None, tokens: list[str]):
    with database.session(write=False) as session:
        dialect = session.get_bind().dialect.name
        condition, bound = summary.sql_all_match(tokens, dialect, lambda i: f":token_{i}")
        found = session.scalar(
            select(literal(1))
            .select_from(select(literal(common, String).label("common")).subquery("summary"))
            .where(text(condition).bindparams(**{f"token_{i}": token for i, token in enumerate(bound)}))
        )
    assert (found == 1) == (common is not None and summary.all_match(common, tokens)), (common, tokens)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(_texts, min_size=1, max_size=3),
    tokens=st.lists(st.text(alphabet="abcdeé.:_ " + _SEP, max_size=5), min_size=1, max_size=3),
)
@example(texts=["abc"], tokens=["abc", "c" + _SEP + "d"])  # a token all_match skips must not pass
def test_a_fingerprint_could_match_exactly_when_its_filter_has_the_bits(
    database: Database, texts: list[str], tokens: list[str]
):
    # The common parts' test, tried first, only ever admits what the filter would.
    stored = summary.to_bytes(summary.mask_of(texts))
    common = summary.joined(frozenset.intersection(*(summary.parts_of(t) for t in texts)))
    with database.session(write=False) as session:
        dialect = session.get_bind().dialect.name
        every, bound = summary.sql_all_match(tokens, dialect, lambda i: f":token_{i}")
        could = summary.sql_could_match(tokens, dialect, every)
        named = {f"token_{i}": token for i, token in enumerate(bound)} if every in could else {}
        found = session.scalar(
            select(literal(1))
            .select_from(
                select(
                    literal(common, String).label("common"), literal(stored, LargeBinary).label("trigrams")
                ).subquery()
            )
            .where(text(could).bindparams(**named))
        )
    assert (found == 1) == summary.has_bits(stored, summary.token_bits(tokens)), (texts, tokens)


def test_a_searchs_bits_start_with_its_tokens_first_trigrams():
    # Databases test them in this order; shared endings ("…error") rule out the least.
    width = summary.BITS // 8
    bits = summary.token_bits(["typeerror", "cannot"])
    as_mask = [1 << ((width - 1 - index) * 8 + bit.bit_length() - 1) for index, bit in bits]
    firsts = summary.token_mask("typ") | summary.token_mask("can")
    assert sum(as_mask[: firsts.bit_count()]) == firsts
