"""The Overview (``/``): a card per metric (value, level, the last hour as a sparkline drawn on
the server, thresholds), the monitor's own health and the latest incidents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from vigil.core.catalogue import DEFAULT_RULES
from vigil.web.pages.render import base_context, render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.sections import Context, Loader, Reads, load, section
from vigil.web.routes import alerts as alerts_api
from vigil.web.routes import metrics as metrics_api
from vigil.web.routes import system as system_api
from vigil.web.schemas import CurrentValueOut

router = APIRouter(route_class=PageRoute, include_in_schema=False)

LATEST_SHOWN = 8
# However many metrics are pushed, the page shows (and reads the history of) this many: the
# rules' metrics first, then the others by name; the rest are counted, not drawn.
MAX_CARDS = 100
SPARKLINE_POINTS = 60
SPARKLINE_RANGE = timedelta(hours=1)
# Ranges end just after now: the last cycle's samples are stamped now, and ends are exclusive.
LATEST = timedelta(seconds=1)
# A value whose last sample is older than this many monitor intervals is stale, not current.
STALE_INTERVALS = 2
BUILT_IN = {rule.metric: rule for rule in DEFAULT_RULES}


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


@dataclass(frozen=True)
class Card:
    """What one metric's card says: its name and unit (a metric without a rule too), its value
    and level only while the value is fresh; a stale value is shown with its age instead."""

    metric: CurrentValueOut
    spark: Spark | None
    name: str
    unit: str
    sampled_at: datetime | None
    stale: bool
    age_s: float | None

    @property
    def level(self) -> str | None:
        """The level to show: none for a stale value (it is not the metric's state now)."""
        if self.stale or self.metric.value is None or self.metric.rule is None:
            return None
        return self.metric.level.value if self.metric.level is not None else None


def named(metric: str) -> tuple[str, str]:
    """A metric's display name and unit when no rule names it: the built-in metric's, or its
    id made readable (``queue_depth`` -> ``Queue Depth``) without a unit."""
    known = BUILT_IN.get(metric)
    if known is not None:
        return known.display_name, known.unit
    return metric.replace("_", " ").replace(".", " ").title(), ""


def sample_age(
    item: CurrentValueOut, *, now: datetime, stale_after: float
) -> tuple[datetime | None, float | None, bool]:
    """When a current value was sampled, how old it is (seconds), and whether it is stale:
    the runtime's own sample time and verdict when it gives them, else when the value was
    last set, stale past ``stale_after`` seconds."""
    sampled_at = getattr(item, "sampled_at", None) or item.at
    age = (now - sampled_at).total_seconds() if sampled_at is not None else None
    stale = bool(getattr(item, "stale", False)) or (
        item.value is not None and age is not None and age > stale_after
    )
    return sampled_at, age, stale


def stale_after_of(reads: Reads) -> float:
    return STALE_INTERVALS * reads.vigil.settings.interval


def card(item: CurrentValueOut, spark: Spark | None, *, now: datetime, stale_after: float) -> Card:
    rule = item.rule
    name, unit = (rule.display_name, rule.unit) if rule is not None else named(item.metric)
    sampled_at, age, stale = sample_age(item, now=now, stale_after=stale_after)
    return Card(item, spark, name, unit, sampled_at, stale, age)


async def cards_section(reads: Reads) -> Context:
    listed = await metrics_api.current(reads.request, reads.principal)
    current = sorted(listed, key=lambda item: item.rule is None)[:MAX_CARDS]  # stable: by name
    now = reads.vigil.clock()
    stale_after = stale_after_of(reads)
    end = now + LATEST
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
        below = rule is not None and rule.direction == "below"
        spark = sparkline(
            # The worst reading of each minute (the highest, the lowest for a rule where lower
            # is worse): a spike or a dip that opened an incident stays seen.
            [point.min if below else point.max for point in histories[item.metric]],
            warning=rule.warning if rule else None,
            critical=rule.critical if rule else None,
        )
        cards.append(card(item, spark, now=now, stale_after=stale_after))
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
