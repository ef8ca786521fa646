"""The Overview (``/``): a card per metric (value, level, the last hour as a sparkline drawn on
the server, thresholds), the monitor's own health and the latest incidents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from vigil.web.pages.render import base_context, render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.sections import Context, Loader, Reads, load, section
from vigil.web.routes import alerts as alerts_api
from vigil.web.routes import metrics as metrics_api
from vigil.web.routes import system as system_api

router = APIRouter(route_class=PageRoute, include_in_schema=False)

LATEST_SHOWN = 8
# However many metrics are pushed, the page shows (and reads the history of) this many: the
# rules' metrics first, then the others by name; the rest are counted, not drawn.
MAX_CARDS = 100
SPARKLINE_POINTS = 60
SPARKLINE_RANGE = timedelta(hours=1)
# Ranges end just after now: the last cycle's samples are stamped now, and ends are exclusive.
LATEST = timedelta(seconds=1)


@dataclass(frozen=True)
class Spark:
    """A sparkline drawn on the server (an SVG polyline in a 0..100 x 0..30 box), so the card
    reads without JavaScript."""

    points: str
    warning_y: float | None
    critical_y: float | None
    low: float
    high: float
    samples: int


def sparkline(
    values: list[float], *, warning: float | None, critical: float | None
) -> Spark | None:
    if not values:
        return None
    marks = [v for v in (warning, critical) if v is not None]
    low, high = min([*values, *marks]), max([*values, *marks])
    if high == low:
        high, low = high + 1, low - 1
    span = high - low

    def y(value: float) -> float:
        return round(28 - (value - low) / span * 26, 2)

    step = 100 / max(1, len(values) - 1)
    points = " ".join(f"{round(i * step, 2)},{y(v)}" for i, v in enumerate(values))
    if len(values) == 1:
        points = f"0,{y(values[0])} 100,{y(values[0])}"
    return Spark(
        points=points,
        warning_y=y(warning) if warning is not None else None,
        critical_y=y(critical) if critical is not None else None,
        low=min(values),
        high=max(values),
        samples=len(values),
    )


async def cards_section(reads: Reads) -> Context:
    listed = await metrics_api.current(reads.request, reads.principal)
    current = sorted(listed, key=lambda item: item.rule is None)[:MAX_CARDS]  # stable: by name
    end = reads.vigil.clock() + LATEST
    # Every card's last hour in one query, over a bounded number of metrics.
    histories = await reads.vigil.store.metric_histories(
        [item.metric for item in current],
        start=end - SPARKLINE_RANGE,
        end=end,
        max_points=SPARKLINE_POINTS,
    )
    cards = []
    for item in current:
        rule = item.rule
        spark = sparkline(
            [point.mean for point in histories[item.metric]],
            warning=rule.warning if rule else None,
            critical=rule.critical if rule else None,
        )
        cards.append({"metric": item, "spark": spark})
    return {"cards": cards, "cards_hidden": len(listed) - len(current)}


async def health_section(reads: Reads) -> Context:
    health = await system_api.health(reads.request, reads.principal)
    return {"health": health}


async def latest_section(reads: Reads) -> Context:
    page = await alerts_api.history(reads.request, reads.principal, page=1, page_size=LATEST_SHOWN)
    return {"latest": page.items}


SECTIONS: dict[str, Loader] = {
    "cards": cards_section,
    "health": health_section,
    "latest": latest_section,
}


@router.get("/", response_class=HTMLResponse, name="overview")
async def overview(request: Request, principal: Reader) -> HTMLResponse:
    context = base_context(request, principal, "overview", "Overview")
    context.update(await load(SECTIONS.values(), Reads(request, principal)))
    return render(request, "overview.html", context)


@router.get("/sections/overview/{name}", response_class=HTMLResponse)
async def overview_section(request: Request, name: str, principal: Reader) -> HTMLResponse:
    return await section(Reads(request, principal), SECTIONS, page="overview", name=name)
