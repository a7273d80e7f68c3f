"""`manage.py bench <suite>`: time Loyalist's hot paths on the current database.

Each suite is a `BenchSuite` registered in `SUITES`; `bench desk` is the first.
Suites for the segment engine and the API plug in the same way:

    class SegmentsBench(BenchSuite):
        name = "segments"
        ...

    SUITES = {suite.name: suite for suite in (DeskBench, SegmentsBench)}
"""

import os
import random
import re
import statistics
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from crm.desk.forms import token_new
from crm.models import Customer, LoyaltyCard, Product, Receipt, StaffMember, Store
from crm.roles import CLERKS
from crm.services import LineInput, receipt_record

BENCH_CLERK = "bench-clerk"


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


class DeskBench(BenchSuite):
    """Record sales through the desk view, as a clerk's browser posts them."""

    name = "desk"
    help = (
        "Server time of recording a sale at the desk (the full view: form, "
        "customer lookup, receipt_record, points, stats, contacts) on a database "
        "of --customers customers."
    )

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--customers",
            type=int,
            default=100_000,
            help=(
                "Customers the database must hold (default 100,000); an empty "
                "database is filled with seed_demo first."
            ),
        )
        parser.add_argument(
            "--sales",
            type=int,
            default=500,
            help="Sales to time (default 500).",
        )
        parser.add_argument(
            "--warmup",
            type=int,
            default=50,
            help="Sales recorded first and not timed (default 50).",
        )
        parser.add_argument(
            "--target-ms",
            type=float,
            default=50.0,
            help="p95 target in milliseconds (default 50).",
        )
        parser.add_argument("--seed", type=int, default=7, help="Random seed.")

    def run(
        self,
        *,
        customers: int,
        sales: int,
        warmup: int,
        target_ms: float,
        seed: int,
        **_options,
    ) -> bool:
        self._customers_ensure(customers)
        store, clerk = self._clerk_ensure()
        rng = random.Random(seed)  # noqa: S311 - repeatable sales, not secrets
        cards = list(
            LoyaltyCard.objects.filter(
                customer__isnull=False, status=LoyaltyCard.Status.ACTIVE
            ).values_list("number", flat=True)
        )
        skus = list(Product.objects.active().values_list("sku", flat=True))
        if not cards or not skus:
            raise CommandError("The database needs customers with cards and products.")

        client = Client()
        client.force_login(clerk)
        url = reverse("desk:sale")

        def basket() -> list[tuple[str, int]]:
            lines = rng.sample(skus, k=min(rng.randint(1, 3), len(skus)))
            return [(sku, rng.randint(1, 2)) for sku in lines]

        def post() -> float:
            lines = basket()
            data = {
                "action": "record",
                "token": token_new(),
                "identifier": rng.choice(cards),
                "payment_method": "card",
                "lines-TOTAL_FORMS": str(len(lines) + 1),
                "lines-INITIAL_FORMS": "0",
            }
            for index, (sku, quantity) in enumerate(lines):
                data[f"lines-{index}-code"] = sku
                data[f"lines-{index}-quantity"] = str(quantity)
            started = time.perf_counter()
            response = client.post(url, data)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 302:
                errors = re.findall(
                    r'<ul class="errorlist[^>]*>(.*?)</ul>', response.content.decode()
                )
                raise CommandError(
                    f"The desk refused a sale ({response.status_code}): {errors}"
                )
            return elapsed

        def service() -> float:
            card = LoyaltyCard.objects.select_related("customer").get(
                number=rng.choice(cards)
            )
            lines = [LineInput(sku, quantity) for sku, quantity in basket()]
            started = time.perf_counter()
            receipt_record(
                store=store,
                clerk=clerk,
                customer=card.customer,
                loyalty_card=card,
                lines=lines,
                payment_method=Receipt.PaymentMethod.CARD,
                idempotency_key=token_new(),
            )
            return (time.perf_counter() - started) * 1000

        # Not DEBUG: the query log would be part of what is measured.
        with override_settings(
            DEBUG=False, ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]
        ):
            for _sale in range(warmup):
                post()
            statements = 0

            def count(execute, sql, params, many, context):
                nonlocal statements
                statements += 1
                return execute(sql, params, many, context)

            with connection.execute_wrapper(count):
                post()
            timings = Timings([post() for _sale in range(sales)])
            service_timings = Timings([service() for _sale in range(sales)])

        total_customers = Customer.objects.count()
        mode = "eager, in-process" if settings.CELERY_TASK_ALWAYS_EAGER else "broker"
        self.stdout.write(
            f"desk: {sales} sales timed after {warmup} warm-up sales, store "
            f"{store.code}, {total_customers:,} customers, "
            f"{Receipt.objects.count():,} receipts, {connection.vendor}, "
            f"tasks {mode}, load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} CPUs"
        )
        self.stdout.write(
            f"  record a sale (POST /desk/, card scanned, 1-3 lines): "
            f"median {timings.median:.1f} ms, p95 {timings.p95:.1f} ms, "
            f"p99 {timings.p99:.1f} ms, max {max(timings.samples):.1f} ms; "
            f"{statements} SQL statements per sale"
        )
        self.stdout.write(
            f"  receipt_record alone, same kind of sales: "
            f"median {service_timings.median:.1f} ms, "
            f"p95 {service_timings.p95:.1f} ms"
        )
        met = timings.p95 < target_ms
        verdict = (
            self.style.SUCCESS(f"  p95 under the {target_ms:g} ms target")
            if met
            else self.style.ERROR(f"  p95 over the {target_ms:g} ms target")
        )
        self.stdout.write(verdict)
        return met

    def _customers_ensure(self, wanted: int) -> None:
        existing = Customer.objects.count()
        if existing >= wanted:
            return
        if existing:
            raise CommandError(
                f"The database has {existing:,} customers, fewer than the "
                f"{wanted:,} asked for. Run the bench on an empty database (it is "
                f"seeded with seed_demo) or pass --customers {existing}."
            )
        self.stdout.write(f"Seeding {wanted:,} demo customers with seed_demo...")
        call_command("seed_demo", customers=wanted, verbosity=1)
        if connection.vendor == "postgresql":
            # A live database has planner statistics (autovacuum keeps them);
            # a freshly bulk-loaded one has none until autovacuum wakes up, and
            # its wild estimates make PostgreSQL JIT-compile every sale's queries.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

    def _clerk_ensure(self) -> tuple[Store, object]:
        """A clerk of its own, so the bench's sales are told apart by clerk."""
        store = Store.objects.order_by("code").first()
        if store is None:
            raise CommandError("The database has no store.")
        clerk, created = get_user_model().objects.get_or_create(username=BENCH_CLERK)
        if created:
            clerk.set_unusable_password()
            clerk.save(update_fields=["password"])
        clerk.groups.add(Group.objects.get_or_create(name=CLERKS)[0])
        staff, _created = StaffMember.objects.get_or_create(
            user=clerk, defaults={"store": store}
        )
        return staff.store, clerk


class SegmentsBench(BenchSuite):
    name = "segments"
    help = (
        "Segment engine against hand-written SQL floors: full rebuild, no-op "
        "recompute, incremental throughput and latency with real Celery workers, "
        "time flips. Seeds an empty PostgreSQL database; writes data."
    )

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--customers",
            type=int,
            default=100_000,
            help="Customers the database must hold; an empty one is seeded (seed 1).",
        )
        parser.add_argument(
            "--json",
            dest="json_path",
            metavar="PATH",
            default=None,
            help="Also write the figures as JSON to PATH.",
        )
        parser.add_argument(
            "--no-worker",
            dest="worker",
            action="store_false",
            help="Start no Celery workers; tasks run eagerly in-process.",
        )
        parser.add_argument("--contact-rate", type=float, default=200.0)
        parser.add_argument("--contact-seconds", type=float, default=60.0)
        parser.add_argument("--time-flip-hours", type=float, default=2.0)

    def run(
        self,
        *,
        customers,
        json_path,
        worker,
        contact_rate,
        contact_seconds,
        time_flip_hours,
        **_options,
    ) -> bool:
        from segments.benchmarks import bench_segments

        figures = bench_segments(
            customers=customers,
            json_path=json_path,
            worker=worker,
            stdout=self.stdout,
            contact_rate=contact_rate,
            contact_seconds=contact_seconds,
            time_flip_hours=time_flip_hours,
        )
        return figures["all_targets_met"]


SUITES: dict[str, type[BenchSuite]] = {
    suite.name: suite for suite in (DeskBench, SegmentsBench)
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
        met = SUITES[suite](self.stdout, self.style).run(**options)
        if strict and not met:
            raise CommandError("A benchmark target was missed.")
