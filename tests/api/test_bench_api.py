"""`manage.py bench api` runs end to end: gunicorn, concurrent clients, figures."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="gunicorn needs a database it can share with the test",
    ),
]


def test_bench_api_posts_receipts_through_gunicorn_without_errors(
    tmp_path, monkeypatch
):
    # The gunicorn workers must open the test database, not the configured one.
    db = connection.settings_dict
    monkeypatch.setenv(
        "DATABASE_URL",
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
        f":{db['PORT'] or 5432}/{db['NAME']}",
    )
    call_command("seed_demo", customers=40, seed=3, stdout=io.StringIO())
    figures_path = tmp_path / "bench.json"
    out = io.StringIO()

    call_command(
        "bench",
        "api",
        "--customers=40",
        "--clients=2",
        "--seconds=3",
        "--warmup=0.5",
        "--workers=2",
        f"--json={figures_path}",
        stdout=out,
    )

    figures = json.loads(figures_path.read_text())
    assert figures["errors"] == 0, figures["error_samples"]
    assert figures["receipts"] > 0
    for name in ("receipts_per_s", "p50_ms", "p95_ms", "p99_ms", "elapsed_s"):
        assert isinstance(figures[name], int | float), name
    assert figures["p50_ms"] <= figures["p95_ms"]
    assert "receipts/s" in out.getvalue()


def test_bench_refuses_a_database_behind_the_code(db, monkeypatch):
    from django.core.management.base import CommandError
    from django.db.migrations.executor import MigrationExecutor

    # As on a benchmark database created before the latest migration.
    monkeypatch.setattr(
        MigrationExecutor,
        "migration_plan",
        lambda self, targets: [
            (self.loader.graph.nodes[("crm", "0001_initial")], False)
        ],
    )

    with pytest.raises(CommandError, match=r"unapplied migrations.*manage\.py migrate"):
        call_command("bench", "api", "--seconds", "1", stdout=io.StringIO())
