"""`manage.py bench <suite>`: time Loyalist's hot paths on the current database.

Each suite is a `BenchSuite` registered in `SUITES`; `bench desk` is the first.
Suites for the segment engine and the API plug in the same way:

    class SegmentsBench(BenchSuite):
        name = "segments"
        ...

    SUITES = {suite.name: suite for suite in (DeskBench, SegmentsBench)}
"""

import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.authtoken.models import Token

from crm.desk.forms import token_new
from crm.models import Customer, LoyaltyCard, Product, Receipt, StaffMember, Store
from crm.roles import API_TILLS, CLERKS
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
        demo_customers_ensure(wanted=wanted, stdout=self.stdout)

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


class ApiBench(BenchSuite):
    """Post receipts to the REST API through gunicorn, as busy tills do."""

    name = "api"
    help = (
        "Throughput and latency of POST /api/v1/receipts/ (3 lines each, a "
        "unique Idempotency-Key) through gunicorn on loopback, from concurrent "
        "keep-alive clients of one till token. Seeds an empty database; writes "
        "data."
    )
    till_username = "bench-api-till"
    # Far above any bench's rate: the bench measures the server, not the limit.
    throttle_rate = "100000000/min"

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--customers",
            type=int,
            default=20_000,
            help="Customers the database must hold; an empty one is seeded.",
        )
        parser.add_argument(
            "--clients", type=int, default=16, help="Concurrent clients (16)."
        )
        parser.add_argument(
            "--seconds", type=float, default=30.0, help="Timed seconds (30)."
        )
        parser.add_argument(
            "--warmup",
            type=float,
            default=3.0,
            help="Seconds of untimed requests first (3).",
        )
        parser.add_argument(
            "--max-receipts",
            type=int,
            default=200_000,
            help="Stop after this many timed requests even within --seconds.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=3,
            help=(
                "gunicorn workers (3: on 2 cores 3 sync workers beat 2 and 4, which "
                "leave the cores idle or fight over them)."
            ),
        )
        parser.add_argument(
            "--worker-class", choices=["sync", "gthread"], default="sync"
        )
        parser.add_argument(
            "--threads", type=int, default=4, help="Threads per gthread worker."
        )
        parser.add_argument("--target-rps", type=float, default=200.0)
        parser.add_argument("--target-p95-ms", type=float, default=100.0)
        parser.add_argument(
            "--json",
            dest="json_path",
            metavar="PATH",
            default=None,
            help="Also write the figures as JSON to PATH.",
        )
        parser.add_argument("--seed", type=int, default=7, help="Random seed.")

    def run(
        self,
        *,
        customers: int,
        clients: int,
        seconds: float,
        warmup: float,
        max_receipts: int,
        workers: int,
        worker_class: str,
        threads: int,
        target_rps: float,
        target_p95_ms: float,
        json_path: str | None,
        seed: int,
        **_options,
    ) -> bool:
        demo_customers_ensure(wanted=customers, stdout=self.stdout)
        store, token = self._till_ensure()
        customer_ids = list(
            Customer.objects.filter(home_store=store).values_list("pk", flat=True)
        )
        skus = list(Product.objects.active().values_list("sku", flat=True))
        if not customer_ids or len(skus) < 3:
            raise CommandError("The database needs customers and three products.")
        port = _free_port()
        server = self._gunicorn_start(port, workers, worker_class, threads)
        try:
            self._wait_ready(server, port, token)
            load = ReceiptLoad(
                port=port,
                token=token,
                store=store.code,
                customer_ids=customer_ids,
                skus=skus,
                seed=seed,
            )
            load.drive(clients=clients, seconds=warmup, limit=max_receipts)
            figures = load.drive(clients=clients, seconds=seconds, limit=max_receipts)
        finally:
            self._gunicorn_stop(server)
        figures = {
            "suite": self.name,
            "customers": Customer.objects.count(),
            "store": store.code,
            "clients": clients,
            "seconds": seconds,
            "gunicorn": f"{workers} {worker_class} workers"
            + (f" x {threads} threads" if worker_class == "gthread" else ""),
            "throttle_rate": self.throttle_rate,
            "database": connection.vendor,
            "tasks": "eager, in-process"
            if settings.CELERY_TASK_ALWAYS_EAGER
            else "broker (no worker started)",
            "cpus": os.cpu_count(),
            **figures,
            "targets": {"receipts_per_s": target_rps, "p95_ms": target_p95_ms},
        }
        met = {
            "receipts_per_s": figures["receipts_per_s"] >= target_rps,
            "p95_ms": figures["p95_ms"] is not None
            and figures["p95_ms"] < target_p95_ms,
            "errors": figures["errors"] == 0,
        }
        figures["met"] = met
        figures["all_targets_met"] = all(met.values())
        self._report(figures)
        if json_path:
            with open(json_path, "w") as handle:
                json.dump(figures, handle, indent=2)
        return figures["all_targets_met"]

    def _till_ensure(self) -> tuple[Store, str]:
        """A till user with a token at the store with the most customers."""
        top = (
            Customer.objects.filter(home_store__isnull=False)
            .values("home_store")
            .annotate(n=Count("pk"))
            .order_by("-n", "home_store")
            .first()
        )
        if top is None:
            raise CommandError("The database has no customers with a home store.")
        store = Store.objects.get(pk=top["home_store"])
        user, created = get_user_model().objects.get_or_create(
            username=self.till_username
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get_or_create(name=API_TILLS)[0])
        StaffMember.objects.update_or_create(user=user, defaults={"store": store})
        token, _created = Token.objects.get_or_create(user=user)
        return store, token.key

    def _gunicorn_start(
        self, port: int, workers: int, worker_class: str, threads: int
    ) -> "subprocess.Popen":
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [
            str(gunicorn),
            "config.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--worker-class",
            worker_class,
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ]
        if worker_class == "gthread":
            command += ["--threads", str(threads)]
        env = {
            **os.environ,
            "DEBUG": "False",
            "LOYALIST_API_THROTTLE_RATE": self.throttle_rate,
        }
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in _stop
            prefix="bench-api-gunicorn-", suffix=".log", delete=False
        )
        self.stdout.write(
            f"Starting gunicorn on 127.0.0.1:{port} ({workers} {worker_class} "
            f"workers, LOYALIST_API_THROTTLE_RATE={self.throttle_rate}); log "
            f"{self._log.name}"
        )
        return subprocess.Popen(  # noqa: S603 - our own gunicorn, fixed arguments
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _wait_ready(self, server, port: int, token: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError(f"gunicorn exited: {self._log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request(
                    "GET",
                    "/api/v1/stores/",
                    headers={"Authorization": f"Token {token}"},
                )
                status = conn.getresponse().status
                conn.close()
            except OSError:
                time.sleep(0.2)
                continue
            if status == 200:
                return
            raise CommandError(f"gunicorn answered {status}: {self._log_tail()}")
        raise CommandError(f"gunicorn did not start: {self._log_tail()}")

    def _gunicorn_stop(self, server) -> None:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        self._log.close()

    def _log_tail(self) -> str:
        self._log.flush()
        with open(self._log.name) as handle:
            return handle.read()[-2000:]

    def _report(self, figures: dict) -> None:
        self.stdout.write(
            f"api: POST /api/v1/receipts/ (3 lines) from {figures['clients']} "
            f"keep-alive clients for {figures['elapsed_s']:.1f} s via gunicorn "
            f"({figures['gunicorn']}), store {figures['store']}, "
            f"{figures['customers']:,} customers, {figures['database']}, tasks "
            f"{figures['tasks']}, {figures['cpus']} CPUs"
        )
        self.stdout.write(
            f"  {figures['receipts']:,} receipts, {figures['receipts_per_s']:.1f} "
            f"receipts/s; latency p50 {_ms(figures['p50_ms'])}, p95 "
            f"{_ms(figures['p95_ms'])}, p99 {_ms(figures['p99_ms'])}; "
            f"{figures['errors']} errors"
        )
        for sample in figures["error_samples"]:
            self.stdout.write(f"  error: {sample}")
        targets = figures["targets"]
        for name, text in (
            ("receipts_per_s", f"throughput >= {targets['receipts_per_s']:g}/s"),
            ("p95_ms", f"p95 < {targets['p95_ms']:g} ms"),
            ("errors", "zero errors"),
        ):
            if figures["met"][name]:
                self.stdout.write(self.style.SUCCESS(f"  met: {text}"))
            else:
                self.stdout.write(self.style.ERROR(f"  missed: {text}"))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ReceiptLoad:
    """Concurrent clients posting receipts over keep-alive connections."""

    path = "/api/v1/receipts/"
    max_error_samples = 5

    def __init__(
        self,
        *,
        port: int,
        token: str,
        store: str,
        customer_ids: list[int],
        skus: list[str],
        seed: int,
    ) -> None:
        self.port = port
        self.headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
        }
        self.store = store
        self.customer_ids = customer_ids
        self.skus = skus
        self.seed = seed
        # Keys unique across runs on the same database and token.
        self.run_id = uuid.uuid4().hex[:12]
        self.phase = 0

    def drive(self, *, clients: int, seconds: float, limit: int) -> dict:
        """Post for `seconds` (at most `limit` requests) from `clients` threads."""
        self.phase += 1
        lock = threading.Lock()
        issued = 0
        latencies: list[float] = []
        errors: list[str] = []
        deadline = time.monotonic() + seconds

        def claim() -> int | None:
            nonlocal issued
            with lock:
                if issued >= limit or time.monotonic() >= deadline:
                    return None
                issued += 1
                return issued

        def client(index: int) -> None:
            rng = random.Random(self.seed * 1000 + self.phase * 100 + index)  # noqa: S311
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            mine: list[float] = []
            failures: list[str] = []
            while (number := claim()) is not None:
                body = json.dumps(
                    {
                        "store": self.store,
                        "customer": rng.choice(self.customer_ids),
                        "channel": "store",
                        "payment_method": "card",
                        "lines": [
                            {"sku": sku, "quantity": rng.randint(1, 2)}
                            for sku in rng.sample(self.skus, 3)
                        ],
                    }
                ).encode()
                headers = {
                    **self.headers,
                    "Idempotency-Key": f"bench-{self.run_id}-{self.phase}-{number}",
                }
                started = time.perf_counter()
                try:
                    conn.request("POST", self.path, body, headers)
                    response = conn.getresponse()
                    answer = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", self.port, timeout=30
                    )
                    continue
                mine.append((time.perf_counter() - started) * 1000)
                if response.status != 201:
                    failures.append(f"{response.status} {answer[:200]!r}")
            conn.close()
            with lock:
                latencies.extend(mine)
                errors.extend(failures)

        started = time.monotonic()
        threads = [
            threading.Thread(target=client, args=(index,), daemon=True)
            for index in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        ok = len(latencies) - sum(1 for e in errors if e[:3].isdigit())
        timings = Timings(latencies) if latencies else None
        return {
            "elapsed_s": round(elapsed, 3),
            "requests": issued,
            "receipts": ok,
            "errors": len(errors),
            "receipts_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(timings.median, 2) if timings else None,
            "p95_ms": round(timings.p95, 2) if timings else None,
            "p99_ms": round(timings.p99, 2) if timings else None,
            "max_ms": round(max(latencies), 2) if latencies else None,
            "error_samples": errors[: self.max_error_samples],
        }


SUITES: dict[str, type[BenchSuite]] = {
    suite.name: suite for suite in (DeskBench, SegmentsBench, ApiBench)
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
