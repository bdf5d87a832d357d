"""Dashboard pages a plugin contributes through `register_pages`."""

from __future__ import annotations

from typing import Any

import msgspec


class Page(msgspec.Struct, kw_only=True):
    """A page in the console's navigation.

    `handler` is a Litestar route handler (usually returning a Template);
    `nav_title` is what the navigation shows; `order` sorts the navigation.
    """

    path: str
    nav_title: str
    handler: Any
    order: int = 100
