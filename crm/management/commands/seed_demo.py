import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from crm.demo import DemoLogin, demo_seed, demo_users_ensure
from crm.demo.seed import MAX_CUSTOMERS
from crm.models import Customer


class Command(BaseCommand):
    help = (
        "Fill an empty database with demo stores, products, staff accounts and "
        "customers with two years of receipts and contacts, and print the demo "
        "logins. A database that has customers is refused, or with --if-empty left "
        "as it is apart from the demo accounts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers",
            type=int,
            default=2000,
            help="Number of demo customers (default 2,000).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=42,
            help="Random seed: the same seed gives the same data (default 42).",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help=(
                "When the database already has customers, leave the data alone and "
                "only make sure the demo accounts exist."
            ),
        )

    def handle(self, *args, customers: int, seed: int, if_empty: bool, **options):
        if not 0 <= customers <= MAX_CUSTOMERS:
            raise CommandError(f"--customers must be between 0 and {MAX_CUSTOMERS:,}.")
        existing = Customer.objects.count()
        if existing:
            customers_text = f"{existing:,} customer{'' if existing == 1 else 's'}"
            if not if_empty:
                raise CommandError(
                    f"The database already has {customers_text}; seed_demo only "
                    "fills an empty database, so that demo data never mixes with real "
                    "data. Use --if-empty to keep the data and only make sure the demo "
                    "accounts exist, or start afresh with `manage.py flush`."
                )
            self.stdout.write(
                f"The database already has {customers_text}; no demo data added."
            )
            self._logins_print(demo_users_ensure())
            return

        started = time.monotonic()
        quiet = options["verbosity"] == 0

        def bar(description: str, total: int) -> tqdm:
            return tqdm(
                total=total,
                desc=f"{description:>10}",
                unit="",
                unit_scale=True,
                disable=quiet,
                file=self.stderr,
            )

        summary = demo_seed(customers=customers, seed=seed, progress=bar)
        if connection.vendor == "postgresql":
            # Fresh bulk-loaded tables have no planner statistics; without them
            # the first sales plan the statistics refresh very badly.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {summary.customers:,} customers, {summary.receipts:,} "
                f"receipts ({summary.receipt_lines:,} lines), {summary.contacts:,} "
                f"contacts, {summary.loyalty_cards:,} loyalty cards and "
                f"{summary.consents:,} consents in "
                f"{time.monotonic() - started:.1f} s (seed {seed})."
            )
        )
        self._logins_print(summary.logins)

    def _logins_print(self, logins: list[DemoLogin]) -> None:
        self.stdout.write(
            "Demo logins (for development only; change them anywhere else):"
        )
        name_width = max(len(login.username) for login in logins)
        password_width = max(len(login.password) for login in logins)
        for login in logins:
            mark = "" if login.created else "*"
            self.stdout.write(
                f"  {login.username:<{name_width}}  "
                f"{login.password + mark:<{password_width + 1}}  {login.role}"
            )
        if not all(login.created for login in logins):
            self.stdout.write("  * existed already and kept its own password")
