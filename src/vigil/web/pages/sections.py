"""A page is made of sections: a page loads all of its own, and ``/sections/{page}/{name}``
renders one alone, with the same reads and the same template the page includes. The browser's
script swaps a section in when the event stream says it changed, so live updates and the page
without JavaScript come from one template.

A section's loader reads the way the JSON API reads: it calls the API's own route functions
(``vigil.web.routes``), through the same read cache, and hands the templates the API's response
models. A page loads its sections concurrently (``asyncio.gather``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from vigil.core import NotFoundError
from vigil.runtime import Vigil
from vigil.web.auth import Principal, web_state
from vigil.web.pages.filters import HistoryFilters
from vigil.web.pages.render import base_context, render

Context = dict[str, Any]


@dataclass(frozen=True)
class Reads:
    """One request's reads: the request and caller the API route functions expect, and the
    history filters the page's URL asks for (the Alerts page's; the others have none)."""

    request: Request
    principal: Principal
    filters: HistoryFilters = field(default_factory=HistoryFilters)

    @property
    def vigil(self) -> Vigil:
        return web_state(self.request).vigil


Loader = Callable[[Reads], Awaitable[Context]]


async def load(loaders: Iterable[Loader], reads: Reads) -> Context:
    """Several sections at once; their reads run concurrently."""
    context: Context = {}
    for part in await asyncio.gather(*(loader(reads) for loader in loaders)):
        context.update(part)
    return context


async def section(
    reads: Reads,
    sections: Mapping[str, Loader],
    *,
    page: str,
    name: str,
    extras: Mapping[str, Any] | None = None,
) -> HTMLResponse:
    """The section ``name`` of ``page`` alone (template ``{page}/{name}.html``); an unknown name
    is not found."""
    loader = sections.get(name)
    if loader is None:
        raise NotFoundError("section", name)
    context = base_context(reads.request, reads.principal, page, "")
    context.update(extras or {})
    context.update(await loader(reads))
    return render(reads.request, f"{page}/{name}.html", context)
