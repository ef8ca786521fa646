"""``/api/metrics``: every metric's current value with its rule and level (live view), and one
metric's history over a time range, averaged into buckets (database)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from vigil.core import ValidationError
from vigil.web.auth import Viewer, web_state
from vigil.web.errors import responses
from vigil.web.schemas import (
    INSTANCE_REGEX,
    METRIC_REGEX,
    CurrentValueOut,
    MetricHistoryOut,
    MetricPointOut,
    UtcDateTime,
)

router = APIRouter(prefix="/api/metrics", tags=["metrics"])

DEFAULT_RANGE = timedelta(hours=1)
MAX_POINTS = 2000


@router.get("", responses=responses(401, 403, 503), summary="Current value of every metric")
async def current(request: Request, _: Viewer) -> list[CurrentValueOut]:
    view = web_state(request).vigil.view
    values = view.current
    watched = {rule.metric for rule in view.rules.values() if rule.metric}
    return [
        CurrentValueOut.of(metric, values.get(metric), view.rule_for(metric))
        for metric in sorted(watched | values.keys())
    ]


@router.get(
    "/{metric}/history",
    responses=responses(401, 403, 422, 503),
    summary="One metric over a time range",
    description="Samples in [`start`, `end`) averaged into at most `max_points` equal buckets "
    "(empty buckets left out), oldest first; all instances together unless `instance` is "
    "given. Default range: the last hour.",
)
async def history(
    request: Request,
    _: Viewer,
    metric: Annotated[str, Path(pattern=METRIC_REGEX)],
    start: UtcDateTime | None = None,
    end: UtcDateTime | None = None,
    max_points: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 500,
    instance: Annotated[str | None, Query(pattern=INSTANCE_REGEX)] = None,
) -> MetricHistoryOut:
    vigil = web_state(request).vigil
    end = end if end is not None else vigil.clock()
    if start is None:
        try:
            start = end - DEFAULT_RANGE
        except OverflowError:
            raise ValidationError("end", "is too early for the default range") from None
    if end <= start:
        raise ValidationError("end", "must be after start")
    points = await vigil.store.metric_history(
        metric, start=start, end=end, max_points=max_points, instance=instance
    )
    return MetricHistoryOut(
        metric=metric,
        start=start,
        end=end,
        max_points=max_points,
        points=[MetricPointOut.of(point) for point in points],
    )
