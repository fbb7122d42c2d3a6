"""(being written)"""

from __future__ import annotations

from fastapi import APIRouter

from trapline.ui.errors import UiRoute

__all__ = ["router"]

router = APIRouter(route_class=UiRoute, include_in_schema=False)
