"""`bench desk`: the till page's sale, timed as a clerk's browser posts it."""

import os
import random
import re
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from crm.desk.forms import token_new
from crm.models import Customer, LoyaltyCard, Product, Receipt, StaffMember, Store
from crm.roles import CLERKS
from crm.services import LineInput, receipt_record

from .base import BenchSuite, Timings, demo_customers_ensure

BENCH_CLERK = "bench-clerk"


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
            f"{Receipt.objects.count():,} receipts, {connection.display_name}, "
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
