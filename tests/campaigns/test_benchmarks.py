"""`bench campaigns` on a tiny seeded database: the hand-written floor and
`run_plan` write the same rows, and the figures are reported."""

import importlib
import io
import re

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from campaigns.models import CampaignRun, Delivery

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the bench needs PostgreSQL"
    ),
]


def test_bench_campaigns_matches_the_floor_and_reports_rate_and_ratio():
    # The RFM segments come from a data migration, which an earlier transactional
    # test's flush removes: put them back as migrating does.
    rfm = importlib.import_module("segments.migrations.0002_default_rfm_segments")
    rfm.create_rfm_segments(apps, None)
    out = io.StringIO()

    call_command(
        "bench", "campaigns", customers=300, repeats=1, parts="plan", stdout=out
    )

    text = out.getvalue()
    # The bench refuses to time a floor that writes other rows than run_plan.
    planned = re.search(r"Planning ([\d,]+) recipients of 300 customers", text)
    assert planned, text
    assert int(planned.group(1).replace(",", "")) > 100
    assert re.search(r"run_plan [\d.]+ s \([\d,]+/s\); floor [\d.]+ s", text)
    assert re.search(r"ratio [\d.]+x", text)
    assert "ratio to the floor:" in text
    # It cleans up after itself: nothing is left to send.
    assert not CampaignRun.objects.exists()
    assert not Delivery.objects.exists()


def test_bench_campaigns_sends_with_real_workers_exactly_once():
    rfm = importlib.import_module("segments.migrations.0002_default_rfm_segments")
    rfm.create_rfm_segments(apps, None)
    out = io.StringIO()

    call_command(
        "bench",
        "campaigns",
        customers=300,
        parts="send,trigger",
        messages=40,
        trigger_rate=5,
        trigger_seconds=2,
        stdout=out,
    )

    text = out.getvalue()
    runs = re.findall(
        r"(\w+): ([\d,]+) planned, ([\d,]+) received \(([\d,]+) distinct", text
    )
    assert [label for label, *_ in runs] == ["small", "large"], text
    for _label, planned, received, distinct in runs:
        # Every planned message reached the SMTP server, each exactly once.
        assert int(planned) > 0
        assert planned == received == distinct, text
    assert re.search(r"worker peak RSS after 10: \[[\d., ]+\] MB", text), text
    # The triggered part: ten entries, each greeted once.
    assert "10 entries at 5/s" in text, text
    assert "0 lost, 0 duplicates" in text, text
    assert re.search(r"p95 [\d,]+ ms", text), text
