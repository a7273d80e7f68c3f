"""`manage.py bench <suite>`: time Loyalist's hot paths on the current database.

The suites live in the `benchmarks` package of the source checkout, which is not
shipped in the Python package: `bench desk`, `bench api`, `bench segments` and
`bench campaigns`.
A suite is a `BenchSuite` (benchmarks/base.py) listed in `SUITES`.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from benchmarks.api import ApiBench
from benchmarks.base import BenchSuite
from benchmarks.campaigns import CampaignsBench
from benchmarks.desk import DeskBench
from benchmarks.segments import SegmentsBench

SUITES: dict[str, type[BenchSuite]] = {
    suite.name: suite for suite in (DeskBench, SegmentsBench, ApiBench, CampaignsBench)
}


class Command(BaseCommand):
    help = (
        "Measure Loyalist's hot paths on the current database. Suites: "
        + ", ".join(SUITES)
        + ". Run on a demo or staging database: a suite records real data."
    )

    def add_arguments(self, parser):
        suites = parser.add_subparsers(
            dest="suite", required=True, metavar="SUITE", title="suites"
        )
        for name, suite in SUITES.items():
            suite_parser = suites.add_parser(name, help=suite.help)
            suite.add_arguments(suite_parser)
            suite_parser.add_argument(
                "--strict",
                action="store_true",
                help="Exit with an error when a target is missed.",
            )

    def handle(self, *args, suite: str, strict: bool = False, **options):
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            # Benchmarks write data and start servers and workers: on a database
            # behind the code every request would fail, and the figures mean nothing.
            raise CommandError(
                f"The database has {len(pending)} unapplied migrations "
                f"({pending[0][0]}, ...): run `manage.py migrate` first."
            )
        met = SUITES[suite](self.stdout, self.style).run(**options)
        if strict and not met:
            raise CommandError("A benchmark target was missed.")
