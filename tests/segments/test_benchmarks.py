"""`bench segments` on a tiny seeded database, in-process (no Celery worker)."""

import io
import json
import numbers

import pytest
from django.db import connection

from benchmarks.segments import BENCH_SEGMENTS, bench_segments

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the bench needs PostgreSQL"
    ),
]

NUMBERS = (
    "customers",
    "segments",
    "stats_floor_s",
    "sql_floor_s",
    "sql_floor_serial_s",
    "full_rebuild_s",
    "full_rebuild_stats_s",
    "full_rebuild_segments_s",
    "noop_recompute_s",
    "incremental_throughput_per_s",
    "incremental_throughput_in_process_per_s",
    "lost",
)


def test_bench_segments_reports_every_figure_and_the_engine_matches_the_floor(
    tmp_path,
):
    out = io.StringIO()
    path = tmp_path / "bench.json"

    figures = bench_segments(
        customers=300,
        json_path=str(path),
        worker=False,
        stdout=out,
        contact_rate=20,
        contact_seconds=3,
        dirty_customers=300,
        # A whole simulated day: flips come at the hours the seeded sales happened,
        # so a shorter window finds none at some times of day.
        time_flip_hours=24,
        time_flip_step_s=900,
    )

    assert json.loads(path.read_text()) == json.loads(json.dumps(figures))
    assert len(BENCH_SEGMENTS) == figures["segments"] == 50
    for key in NUMBERS:
        assert isinstance(figures[key], numbers.Real), key
    for key in ("p50", "p95", "p99"):
        assert isinstance(figures["incremental_latency_ms"][key], numbers.Real)
    assert isinstance(figures["time_flip_lateness_s"]["p99"], numbers.Real)
    assert figures["postgres_version"]
    assert figures["date"]
    # The hand-written SQL means what the rules mean, and a repeat pass is a no-op.
    assert figures["count_mismatches"] == {}
    assert figures["noop_recompute_changed"] == 0
    assert figures["lost"] == 0
    assert all(isinstance(t["met"], bool) for t in figures["targets"].values())
