"""Limit/offset pagination with absolute next/previous links, as DRF renders them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from trapline.settings import Settings

__all__ = ["DEFAULT_LIMIT", "PageParams", "PageParamsDep", "paginate", "paginate_rows"]

T = TypeVar("T")
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int
    request: Request


def _page_params(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, le=2**53, description="Number of results to return per page.")] = None,
    # Bounded so that the value fits the databases' 64-bit OFFSET.
    offset: Annotated[
        int | None, Query(ge=0, le=2**53, description="The initial index from which to return the results.")
    ] = None,
) -> PageParams:
    settings: Settings = request.app.state.settings
    return PageParams(
        limit=min(limit or DEFAULT_LIMIT, settings.api_page_max_limit), offset=offset or 0, request=request
    )


PageParamsDep = Annotated[PageParams, Depends(_page_params)]


def paginate(
    session: Session, stmt: Select[Any], params: PageParamsDep, serialize: Callable[[Any], T]
) -> dict[str, Any]:
    """Run ``stmt`` for one page and wrap the rows in ``{count, next, previous, results}``."""
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(stmt.limit(params.limit).offset(params.offset)).all()
    return _page(count, [serialize(row) for row in rows], params)


def paginate_rows(rows: Sequence[T], params: PageParamsDep) -> dict[str, Any]:
    """Paginate a list already in memory."""
    return _page(len(rows), list(rows[params.offset : params.offset + params.limit]), params)


def _page(count: int, results: list[Any], params: PageParams) -> dict[str, Any]:
    return {
        "count": count,
        "next": _next_url(count, params),
        "previous": _previous_url(params),
        "results": results,
    }


def _absolute(params: PageParams, **query: int | None) -> str:
    settings: Settings = params.request.app.state.settings
    url = params.request.url
    base = settings.base_url if settings.public_url else f"{url.scheme}://{url.netloc}"
    items = [(k, v) for k, v in params.request.query_params.multi_items() if k not in query]
    items += [(k, str(v)) for k, v in query.items() if v is not None]
    qs = urlencode(items)
    return f"{base}{url.path}" + (f"?{qs}" if qs else "")


def _next_url(count: int, params: PageParams) -> str | None:
    if params.offset + params.limit >= count:
        return None
    return _absolute(params, limit=params.limit, offset=params.offset + params.limit)


def _previous_url(params: PageParams) -> str | None:
    if params.offset <= 0:
        return None
    if params.offset - params.limit <= 0:
        return _absolute(params, limit=params.limit, offset=None)
    return _absolute(params, limit=params.limit, offset=params.offset - params.limit)
