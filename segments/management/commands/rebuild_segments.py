from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from tqdm import tqdm

from crm import fanout
from crm.models import Customer
from segments.models import CustomerSegmentState, Segment, SegmentEvent
from segments.services import recompute_all, rfm_thresholds_compute
from segments.tasks import recompute_dispatch


class Command(BaseCommand):
    help = (
        "Recompute segment memberships for the whole customer base, set-based, range "
        "by range. Every active segment is evaluated in the same pass, so naming one "
        "segment checks it without costing less or more."
    )

    def add_arguments(self, parser):
        parser.add_argument("--segment", help="Slug of a segment that must exist.")
        parser.add_argument(
            "--rfm",
            action="store_true",
            help="Recompute the RFM quintile thresholds first.",
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=None,
            help=(
                "Customer ids per range and transaction (default: the base in "
                f"{fanout.RANGES} ranges of at least {fanout.MIN_RANGE:,} ids)."
            ),
        )
        parser.add_argument(
            "--workers",
            action="store_true",
            help=(
                "Hand the ranges to the Celery workers as a group (every worker "
                "machine on this Redis takes part) and follow their progress, "
                "instead of running them in this process."
            ),
        )

    def handle(self, *args, segment, rfm, chunk_size, workers, verbosity, **options):
        if segment and not Segment.objects.filter(slug=segment).exists():
            raise CommandError(f"No segment with slug {segment!r}.")
        started = timezone.now()
        # Memberships that moved are counted from the history the pass writes: a
        # pass also rewrites customers whose rules version changed but whose
        # segments did not (new RFM thresholds change every version).
        last_event = SegmentEvent.objects.aggregate(last=Max("pk"))["last"] or 0
        # The first pass over a base writes memberships without history.
        first_build = not CustomerSegmentState.objects.exists()
        if rfm:
            thresholds = rfm_thresholds_compute()
            self.stdout.write(
                f"RFM thresholds over {thresholds.customers} buying customers."
            )
        if workers:
            self._on_workers(chunk_size, quiet=verbosity == 0)
        else:
            with tqdm(
                total=Customer.objects.count(),
                unit="customer",
                disable=verbosity == 0,
                file=self.stderr,
            ) as bar:
                recompute_all(chunk_size=chunk_size, progress=bar.update)
        moved = (
            SegmentEvent.objects.filter(pk__gt=last_event)
            .values("customer_id")
            .distinct()
            .count()
        )
        elapsed = (timezone.now() - started).total_seconds()
        sizes = ", ".join(
            f"{slug} {size}"
            for slug, size in Segment.objects.filter(is_active=True)
            .order_by("slug")
            .values_list("slug", "size")
        )
        if first_build:
            summary = _(
                "Segments built for the first time (their history of entries and "
                "exits starts now)"
            )
        else:
            summary = ngettext(
                "%(moved)d customer entered or left a segment",
                "%(moved)d customers entered or left a segment",
                moved,
            ) % {"moved": moved}
        self.stdout.write(self.style.SUCCESS(f"{summary} in {elapsed:.1f} s. {sizes}"))

    def _on_workers(self, chunk_size: int, *, quiet: bool) -> int:
        run, ranges = recompute_dispatch(chunk_size=chunk_size)
        return fanout.follow(run, ranges, stream=self.stderr, quiet=quiet).changed
