"""Errors on UI pages are pages too: said in words, with the status code, never a traceback.

``UiRoute`` is the route class of every UI router. It turns the domain errors, a bad query
or form value and an unexpected failure into an HTML page, and a missing session into a
redirect to the login form, so the API's JSON error bodies stay the API's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from trapline import errors
from trapline.diskspace import disk_full_cause
from trapline.ui.deps import LoginRequired
from trapline.ui.render import render

__all__ = ["UiRoute", "error_page"]

log = logging.getLogger("trapline.ui")

_STATUS: dict[type[errors.TraplineError], tuple[int, str]] = {
    errors.InvalidInput: (400, "That did not work"),
    errors.MalformedBody: (400, "That request could not be read"),
    errors.PayloadTooLarge: (413, "That was too large"),
    errors.PermissionDenied: (403, "Not allowed"),
    errors.NotFound: (404, "Not found"),
    errors.Unavailable: (503, "Try again later"),
}


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "error.html", {"title": title, "detail": detail, "status": status}, status_code=status)


def _validation_detail(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "the request"
    return f"The value of {where} is not valid: {first.get('msg', 'invalid')}."


class UiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return RedirectResponse("/login?" + urlencode({"next": exc.next_url}), status_code=303)
            except errors.TraplineError as exc:
                status, title = _STATUS.get(type(exc), (400, "That did not work"))
                return error_page(request, status, title, exc.detail)
            except RequestValidationError as exc:
                return error_page(request, 400, "That request was not valid", _validation_detail(exc))
            except Exception as exc:
                # The page's project was loaded by the session that just failed: touching it
                # again (the layout names it) would raise once more. The page goes without it.
                request.state.ui_project = None
                where = {"method": request.method, "path": request.url.path}
                full = disk_full_cause(exc)
                if full is not None:
                    # Nothing was saved (the transaction was rolled back): the same form can be sent again.
                    log.error("ui page failed: the disk is full", extra={**where, "error": str(full)})
                    return error_page(
                        request,
                        503,
                        "The server's disk is full",
                        "Nothing was saved: the server has no room left on its disk. Try again once an "
                        "administrator has freed space.",
                    )
                log.exception("ui page failed", extra=where)
                return error_page(
                    request,
                    500,
                    "Something went wrong",
                    "The page could not be shown because of an error on the server. It has been logged; "
                    "try again, and if it keeps happening, look at the server's log.",
                )

        return guarded
