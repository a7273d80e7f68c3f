from django.core.management.base import BaseCommand
from tqdm import tqdm

from crm.models import Customer
from crm.services import customer_stats_rebuild


class Command(BaseCommand):
    help = "Rebuild every customer's statistics from receipts and contacts, in SQL."

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=50_000,
            help="Customer ids per transaction (default 50,000).",
        )

    def handle(self, *args, chunk_size: int, verbosity: int, **options):
        total = Customer.objects.count()
        with tqdm(
            total=total, unit="customer", disable=verbosity == 0, file=self.stderr
        ) as bar:
            done = customer_stats_rebuild(chunk_size=chunk_size, progress=bar.update)
        self.stdout.write(
            self.style.SUCCESS(f"Rebuilt statistics of {done} customers.")
        )
