"""Console pages a plugin contributes through `register_pages`."""

from __future__ import annotations

from typing import Any

import msgspec


class Page(msgspec.Struct, kw_only=True):
    """A page of the web console (served under ``/console``).

    - `path`: the page's address below ``/console``, starting with the
      plugin's name (``"/drives"``, ``"/drives/list"``); the navigation links
      to ``/console`` + `path`.
    - `nav_title`: what the navigation shows (and the page's title).
    - `handler`: either a plain ``async def`` returning a Litestar
      ``Template`` (Flywheel serves it as ``GET`` `path`), or a Litestar route
      handler, ``Controller`` or ``Router`` whose paths (all starting with the
      plugin's name) are mounted below ``/console`` as given; then one of its
      ``GET`` routes must be `path`. Handlers take ``principal: Caller`` and
      ``state: State`` like API handlers; the caller is the signed-in
      session's tenant and key.
    - `order`: sorts the navigation (Flywheel's own Overview is 0).
    - `templates`: an importable package holding the plugin's Jinja
      templates (``"flywheel_myplugin.templates"``); they are named
      ``"<plugin>/<file>"`` (``Template("myplugin/fleet.html")``) and extend
      ``"console/base.html"``. Since 0.1.
    - `nav`: False keeps a page out of the navigation (a detail page such as
      ``"/drives/{serial:str}"``). Since 0.1.
    """

    path: str
    nav_title: str
    handler: Any
    order: int = 100
    templates: str | None = None
    nav: bool = True
