"""`bench api`: receipts posted to the REST API through gunicorn by busy tills."""

import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count
from rest_framework.authtoken.models import Token

from crm.models import Customer, Product, StaffMember, Store
from crm.roles import API_TILLS

from .base import BenchSuite, Timings, _free_port, _ms, demo_customers_ensure


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
