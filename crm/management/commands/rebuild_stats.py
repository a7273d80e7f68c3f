from django.core.management.base import BaseCommand
from tqdm import tqdm

from crm import fanout
from crm.models import Customer
from crm.services import customer_stats_rebuild
from crm.tasks import stats_rebuild_dispatch


class Command(BaseCommand):
    help = "Rebuild every customer's statistics from receipts and contacts, in SQL."

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=None,
            help=(
                "Customer ids per transaction (default 50,000 in this process; with "
                f"--workers the base in {fanout.RANGES} ranges of at least "
                f"{fanout.MIN_RANGE:,} ids)."
            ),
        )
        parser.add_argument(
            "--workers",
            action="store_true",
            help=(
                "Hand the ranges to the Celery workers as a group (every worker "
                "machine on this Redis takes part) and follow their progress."
            ),
        )

    def handle(self, *args, chunk_size, workers, verbosity: int, **options):
        quiet = verbosity == 0
        if workers:
            run, ranges = stats_rebuild_dispatch(chunk_size=chunk_size)
            fanout.follow(run, ranges, stream=self.stderr, quiet=quiet)
            done = Customer.objects.count()
        else:
            with tqdm(
                total=Customer.objects.count(),
                unit="customer",
                disable=quiet,
                file=self.stderr,
            ) as bar:
                done = customer_stats_rebuild(
                    chunk_size=chunk_size or 50_000, progress=bar.update
                )
        self.stdout.write(
            self.style.SUCCESS(f"Rebuilt statistics of {done} customers.")
        )
