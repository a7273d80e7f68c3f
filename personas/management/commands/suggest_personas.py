from django.core.management.base import BaseCommand, CommandError

from personas.services.suggestions import K_RANGE, personas_suggest
from segments.query import format_rule


class Command(BaseCommand):
    help = (
        "Cluster the customers who bought (k-means on RFM, age, basket, channel mix, "
        "category mix and email engagement, from the statistics tables), describe "
        "each cluster and store it as a draft persona with an editable rule. Earlier "
        "suggested drafts are replaced; accepted personas are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--k",
            type=int,
            help=(
                "Number of clusters; by default the best silhouette score from "
                f"{K_RANGE.start} to {K_RANGE.stop - 1}."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the clusters without storing draft personas.",
        )

    def handle(self, *args, k, dry_run, **options):
        if k is not None and k < 1:
            raise CommandError("--k must be at least 1.")
        result = personas_suggest(k=k, save=not dry_run)
        if not result.clusters:
            self.stdout.write("No customers with purchases to cluster.")
            return
        if result.silhouettes:
            scores = ", ".join(f"{n}: {s:.3f}" for n, s in result.silhouettes.items())
            self.stdout.write(f"Silhouette by k: {scores}; chose k = {result.k}.")
        drafts = result.drafts or [None] * len(result.clusters)
        for cluster, draft in zip(result.clusters, drafts, strict=True):
            name = draft.name if draft else f"Cluster {cluster.label + 1}"
            self.stdout.write(f"\n{name}: {cluster.description}")
            self.stdout.write(
                f"  rule: {format_rule(cluster.rule)}  (matches "
                f"{cluster.rule_matches:,}; {cluster.rule_precision:.0%} in the "
                f"cluster, covers {cluster.rule_recall:.0%} of it)"
            )
        customers = len(result.customer_ids)
        stored = "" if dry_run else f"; {len(result.drafts)} draft personas stored"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nClustered {customers:,} customers in {result.seconds:.1f} s"
                f"{stored}."
            )
        )
