"""``column IN (many values)`` as one bound value instead of one per value.

A search can match thousands of fingerprints, and the order of the list then names them all:
as ``IN (:p1, …, :p2001)`` SQLAlchemy renders and binds every value on every execution (25 to 40
ms of a 10 ms PostgreSQL query). Here the set travels as one array (PostgreSQL:
``= ANY(:set)``) or one JSON text (SQLite: ``IN (SELECT value FROM json_each(:set))``, which
SQLite turns into an index once per statement): ``in_strings``.

A page of 50 issues names its issues or their fingerprints in a dozen statements. On
PostgreSQL each expanded list cost SQLAlchemy a cast per value and psycopg a parse of a query
too long for its cache (~550 values, ~10 ms of a page): ``in_values`` binds one array there,
and keeps SQLite's plain list, whose plans the SQLite tests pin down.

A cast parameter could cost more under a prepared statement's generic plan (PostgreSQL plans
those without the values). Measured with ``bench/ui_bench.py`` at 1,000,000 events, the inbox
pages under ``plan_cache_mode=force_generic_plan`` answered as under ``force_custom_plan``
(the search's p95 75.1 ms against 76.1 ms).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Text, TypeDecorator, bindparam, cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Boolean

__all__ = ["in_strings", "in_values"]


class _StringSet(TypeDecorator[list[str]]):
    """A list of strings bound as one text: a text array's literal (PostgreSQL, cast where it
    is used) or a JSON array (SQLite)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[str] | None, dialect: Dialect) -> Any:
        if value is None:
            return value
        if dialect.name == "postgresql":
            return _array_literal(value)
        return orjson.dumps(value).decode()


def _array_literal(values: list[str]) -> str:
    """A PostgreSQL text array literal, every element quoted: psycopg's own array dumping ran
    a regular expression per element (~2 µs each; a search binds thousands), this is a join."""
    joined = '","'.join(values)
    if "\\" in joined or '"' in joined:
        joined = '","'.join(value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return '{"' + joined + '"}' if values else "{}"


class _Membership(ColumnElement[bool]):
    """``column`` in a bound set: what both spellings below share."""

    inherit_cache = True
    type = Boolean()
    # A condition in itself, as IN is: else SQLite gets ``x IN (…) = 1``, which its planner
    # cannot answer from an index, and read every fingerprint of a project to test 2,000.
    _is_implicitly_boolean = True
    column: ColumnElement[Any]


def _any(element: _Membership, array: Any, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(array, **kw)})"


class _InStrings(_Membership):
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], values: list[str]) -> None:
        self.column = column
        self.values = bindparam(None, values, type_=_StringSet())


def in_strings(column: ColumnElement[Any], values: Iterable[str]) -> ColumnElement[bool]:
    """``column IN values`` with the values bound as one parameter."""
    return _InStrings(column, list(values))


@compiles(_InStrings)
def _in_json(element: _InStrings, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} IN (SELECT value FROM json_each({compiler.process(element.values, **kw)}))"


@compiles(_InStrings, "postgresql")
def _any_array(element: _InStrings, compiler: SQLCompiler, **kw: Any) -> str:
    # The literal is text; the cast makes it the array (parsed by the server, once).
    return _any(element, cast(element.values, ARRAY(Text())), compiler, **kw)


class _InValues(_Membership):
    """Both spellings are bound; each dialect's compiler renders (and so sends) one of them."""

    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("array", InternalTraversal.dp_clauseelement),
        ("listed", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], values: list[Any]) -> None:
        self.column = column
        self.array = bindparam(None, values, type_=ARRAY(column.type))
        self.listed = bindparam(None, values, type_=column.type, expanding=True)


def in_values(column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN values``: one array parameter on PostgreSQL, a list of them on SQLite."""
    return _InValues(column, list(values))


@compiles(_InValues)
def _in_list(element: _InValues, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.listed), **kw)


@compiles(_InValues, "postgresql")
def _any_values(element: _InValues, compiler: SQLCompiler, **kw: Any) -> str:
    return _any(element, element.array, compiler, **kw)
