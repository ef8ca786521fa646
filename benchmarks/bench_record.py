"""The hot path against prometheus_client, and window percentiles against numpy.

Figures, all in one run on the same machine:
  1. one Recorder.record() call against one prometheus_client Histogram.observe() call
     (the established Python choice); a bare deque.append recorder is shown as the floor.
     Target: record() at most 0.5x observe().
  2. one timer() use, as a ``with`` block and as a decorator, against Histogram.time().
  3. p50/p95/p99 of a 10,000-sample window against numpy.percentile on the same data.
     Target: at most 2x numpy.
  4. bytes per stored sample, measured with tracemalloc.

Each figure is the best of several repeats (timeit's advice: the minimum is the figure least
disturbed by other work on a shared machine); the window queries are timed in turn, so a burst
of other work cannot favour one of them. Runs in under ten seconds.
"""

from __future__ import annotations

import time
import timeit
import tracemalloc
from collections import deque
from collections.abc import Callable

import numpy
from prometheus_client import CollectorRegistry, Histogram

from vigil.metrics import BYTES_PER_SAMPLE, Recorder
from vigil.metrics.windows import WindowStats, summarize

REPEAT = 7
WINDOW_SAMPLES = 10_000


def per_call(fn: Callable[[], object], number: int) -> float:
    """Seconds per call of ``fn``, best of REPEAT runs of ``number`` calls."""
    return min(timeit.repeat(fn, repeat=REPEAT, number=number)) / number


def interleaved(fns: dict[str, Callable[[], object]], number: int, rounds: int) -> dict[str, float]:
    """Seconds per call of each function, best of ``rounds`` runs taken in turn, so a burst of
    other work on the machine cannot favour one of them."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number)
    return best


def per_statement(statement: str, namespace: dict[str, object], number: int) -> float:
    """Seconds per execution of ``statement`` (no extra call of ours around it)."""
    timer = timeit.Timer(statement, globals=namespace)
    return min(timer.repeat(repeat=REPEAT, number=number)) / number


def line(label: str, seconds: float, baseline: float | None = None, unit: str = "ns") -> None:
    scale = 1e9 if unit == "ns" else 1e6
    ratio = f"{seconds / baseline:6.2f}x" if baseline else ""
    print(f"  {label:<44} {seconds * scale:10.1f} {unit}  {ratio}")


def hot_path() -> tuple[float, float]:
    histogram = Histogram("bench_seconds", "benchmark", registry=CollectorRegistry())
    recorder = Recorder(capacity=WINDOW_SAMPLES)
    recorder.record("latency", 0.0)  # the buffer exists, as it does after the first sample
    floor: deque[tuple[float, float]] = deque(maxlen=WINDOW_SAMPLES)
    monotonic = time.monotonic

    def deque_record(metric: str, value: float) -> None:
        floor.append((value, monotonic()))

    namespace: dict[str, object] = {
        "histogram": histogram,
        "recorder": recorder,
        "deque_record": deque_record,
    }
    number = 300_000
    observe = per_statement("histogram.observe(0.0421)", namespace, number)
    record = per_statement("recorder.record('latency', 0.0421)", namespace, number)
    plain = per_statement("deque_record('latency', 0.0421)", namespace, number)
    print("1. one sample (per call)")
    line("prometheus_client Histogram.observe()", observe, observe)
    line("vigil Recorder.record()", record, observe)
    line("floor: deque.append((value, monotonic()))", plain, observe)
    verdict = "met" if record <= 0.5 * observe else "MISSED"
    print(f"  target: record() <= 0.50x observe(): {verdict} ({record / observe:.2f}x)")

    number = 200_000
    with_vigil = per_statement("with recorder.timer('t'):\n    pass", namespace, number)
    with_prom = per_statement("with histogram.time():\n    pass", namespace, number)

    @recorder.timer("decorated")
    def vigil_timed() -> None:
        pass

    @histogram.time()
    def prom_timed() -> None:
        pass

    def bare() -> None:
        pass

    deco_vigil = per_call(vigil_timed, number)
    deco_prom = per_call(prom_timed, number)
    deco_bare = per_call(bare, number)
    print("2. one timed block or call (per use)")
    line("prometheus_client `with Histogram.time()`", with_prom, with_prom)
    line("vigil `with recorder.timer(...)`", with_vigil, with_prom)
    line("prometheus_client @Histogram.time()", deco_prom, deco_prom)
    line("vigil @recorder.timer(...)", deco_vigil, deco_prom)
    line("floor: the undecorated call", deco_bare, deco_prom)
    return record, observe


def percentiles() -> tuple[float, float]:
    recorder = Recorder(capacity=WINDOW_SAMPLES)
    rng = numpy.random.default_rng(42)
    for value in rng.lognormal(mean=4.0, sigma=0.6, size=WINDOW_SAMPLES):  # latency-like, ms
        recorder.record("latency", float(value))
    data = numpy.array(recorder.values("latency", 3600))
    assert data.size == WINDOW_SAMPLES

    def numpy_percentiles() -> object:
        return numpy.percentile(data, [50, 95, 99])

    def vigil_window() -> object:
        # what a source calls each cycle: count, total, mean, min, max, p50/p95/p99
        return recorder.window("latency", 3600)

    def vigil_pure() -> object:
        # the same statistics without the "speedups" extra (numpy not installed)
        return summarize(recorder._rings["latency"].window(-numpy.inf), seconds=3600, fast=False)

    def numpy_window() -> object:
        return (data.size, data.mean(), data.min(), data.max(), numpy_percentiles())

    expected = numpy.percentile(data, [50, 95, 99])
    for stats in (recorder.window("latency", 3600), vigil_pure()):
        assert isinstance(stats, WindowStats)
        p50, p95, p99 = stats.p50, stats.p95, stats.p99
        assert p50 is not None and p95 is not None and p99 is not None, stats
        assert numpy.allclose([p50, p95, p99], expected, rtol=1e-12)

    timings = interleaved(
        {
            "base": numpy_percentiles,
            "ours": vigil_window,
            "pure": vigil_pure,
            "full_numpy": numpy_window,
        },
        number=30,
        rounds=12,
    )
    base, ours, pure = timings["base"], timings["ours"], timings["pure"]
    full_numpy = timings["full_numpy"]
    print(f"3. p50/p95/p99 of a {WINDOW_SAMPLES:,}-sample window (per query)")
    line("numpy.percentile(data, [50, 95, 99])", base, base, unit="us")
    line("vigil Recorder.window() (all statistics)", ours, base, unit="us")
    line("numpy: count, mean, min, max, 3 percentiles", full_numpy, base, unit="us")
    line("vigil without numpy (pure Python engine)", pure, base, unit="us")
    verdict = "met" if ours <= 2 * base else "MISSED"
    print(f"  target: window percentiles <= 2.00x numpy.percentile: {verdict} ({ours / base:.2f}x)")
    print(
        "  without numpy, exact order statistics need a sort in pure Python (O(n log n)), so\n"
        "  install the speedups extra where windows are large; it never touches record()."
    )
    return ours, base


def memory() -> None:
    capacity = 100_000
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    recorder = Recorder(capacity=capacity)
    recorder.record("m", 1.0)
    ring_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    floor: deque[tuple[float, float]] = deque(maxlen=capacity)
    for i in range(capacity):
        floor.append((i + 0.5, time.monotonic()))
    deque_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    print("4. memory per stored sample")
    print(f"  vigil ring buffer (stated)                   {BYTES_PER_SAMPLE:10.1f} bytes")
    print(f"  vigil ring buffer (measured, {capacity:,} slots) {ring_bytes / capacity:10.1f} bytes")
    print(f"  deque of (value, time) tuples (measured)     {deque_bytes / capacity:10.1f} bytes")
    print(
        f"  a metric at the default 4,096 samples: {BYTES_PER_SAMPLE * 4096 / 1024:.0f} KiB, "
        "allocated once on its first sample"
    )
    del recorder, floor


def main() -> None:
    started = time.perf_counter()
    record, observe = hot_path()
    ours, base = percentiles()
    memory()
    print(
        f"summary: record() {record / observe:.2f}x observe() (target <= 0.5x); "
        f"percentiles {ours / base:.1f}x numpy (target <= 2x); "
        f"{BYTES_PER_SAMPLE} bytes a sample; ran in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
