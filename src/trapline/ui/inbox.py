"""The issue inbox of a project (being written)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from trapline.ui.deps import UiProject
from trapline.ui.errors import UiRoute
from trapline.ui.render import render

__all__ = ["router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/project/{project_id}/error_tracking")
def inbox(request: Request, project: UiProject) -> Response:
    return render(
        request, "error.html", {"title": project.name, "detail": "The inbox is being written.", "status": 200}
    )
