"""What every benchmark suite shares: timings, seeding and the suite interface."""

import socket
import statistics
from dataclasses import dataclass

from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper
from django.db import connection

from crm.models import Customer


@dataclass(frozen=True)
class Timings:
    """Durations in milliseconds, summarised."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def percentile(self, percent: int) -> float:
        if len(self.samples) < 2:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=100, method="inclusive")[
            percent - 1
        ]


def demo_customers_ensure(*, wanted: int, stdout: OutputWrapper) -> None:
    """Make sure the database holds `wanted` customers: seed an empty one."""
    existing = Customer.objects.count()
    if existing >= wanted:
        return
    if existing:
        raise CommandError(
            f"The database has {existing:,} customers, fewer than the "
            f"{wanted:,} asked for. Run the bench on an empty database (it is "
            f"seeded with seed_demo) or pass --customers {existing}."
        )
    stdout.write(f"Seeding {wanted:,} demo customers with seed_demo...")
    call_command("seed_demo", customers=wanted, verbosity=1)
    if connection.vendor == "postgresql":
        # A live database has planner statistics (autovacuum keeps them);
        # a freshly bulk-loaded one has none until autovacuum wakes up, and
        # its wild estimates make PostgreSQL JIT-compile every sale's queries.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


class BenchSuite:
    name = ""
    help = ""

    def __init__(self, stdout: OutputWrapper, style) -> None:
        self.stdout = stdout
        self.style = style

    @classmethod
    def add_arguments(cls, parser) -> None:
        """Options of this suite."""

    def run(self, **options) -> bool:
        """Run the suite, print its figures; False when a target was missed."""
        raise NotImplementedError


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def table_vacuum(model, *, analyze: bool = False) -> None:
    """Clear dropped rows out of `model`'s table (and, with `analyze`, refresh
    its statistics as autovacuum would), so every timed run meets the same
    table. VACUUM has no ORM spelling; this is the benches' one statement of it."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {'ANALYZE ' if analyze else ''}{table}")
