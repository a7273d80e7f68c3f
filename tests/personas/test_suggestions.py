"""Suggesting personas from data: k-means over the statistics tables."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from crm.demo import customer_index, shopper_types
from crm.models import Customer, Receipt
from personas.models import Persona
from personas.services import persona_create
from personas.services.figures import FIGURES_DAYS
from personas.services.suggestions import K_RANGE, personas_suggest
from segments.compiler import context_build, rule_condition
from segments.services import recompute_all

pytestmark = pytest.mark.django_db

SEED, CUSTOMERS = 5, 3000


@pytest.fixture
def seeded(db):
    call_command("seed_demo", customers=CUSTOMERS, seed=SEED, verbosity=0)
    types = shopper_types(seed=SEED, customers=CUSTOMERS)
    return {
        pk: types[customer_index(email)]
        for pk, email in Customer.objects.values_list("pk", "email")
    }


def cluster_types(result, types) -> list[Counter]:
    return [
        Counter(types[int(pk)] for pk in result.customer_ids[result.labels == c.label])
        for c in result.clusters
    ]


def test_six_clusters_recover_the_six_seeded_shopper_types(seeded):
    result = personas_suggest(k=6, save=False)

    counts = cluster_types(result, seeded)
    majorities = [c.most_common(1)[0] for c in counts]
    purity = [
        n / sum(c.values()) for (_t, n), c in zip(majorities, counts, strict=True)
    ]
    # A clear majority of one shopper type in every cluster, and every type found.
    assert min(purity) >= 0.7, list(zip(majorities, purity, strict=True))
    assert {kind for kind, _n in majorities} == set(seeded.values())


def test_k_is_chosen_by_silhouette_and_clusters_are_drafts_with_rules(seeded):
    result = personas_suggest()

    assert result.k in K_RANGE
    assert set(result.silhouettes) == set(K_RANGE)
    assert result.k == max(result.silhouettes, key=result.silhouettes.get)
    drafts = list(Persona.objects.filter(slug__startswith="suggested-"))
    assert len(drafts) == result.k
    for draft in drafts:
        assert draft.status == Persona.Status.DRAFT
        assert draft.notes.startswith("Who: about ")
        assert "customers" in draft.notes
        assert "How they buy: " in draft.notes
        assert "EUR " in draft.notes
        assert "every 1 months" not in draft.notes
        # Where to reach them is never empty.
        reach = draft.suggestion["figures"]["words"]["reach"]
        assert reach
        assert "Reaching them: " + reach in draft.notes
        # Figures before accepting: the customers the rule matches.
        assert draft.figures.customers == draft.suggestion["rule_matches"] > 0
        assert Persona.Source.CLUSTERING in draft.sources
        # The generated rule compiles and matches customers, mostly of its cluster.
        members = set(
            Customer.objects.filter(
                rule_condition(draft.rules, context_build())
            ).values_list("pk", flat=True)
        )
        assert len(members) == draft.suggestion["rule_matches"] > 0
        # Revenue is that of the members' completed receipts of the last year,
        # summed here in Python (a lapsed cluster may rightly have none).
        since = draft.figures.computed_at - timedelta(days=FIGURES_DAYS)
        assert draft.figures.revenue == sum(
            (
                total
                for customer_id, total, status, at in Receipt.objects.values_list(
                    "customer_id", "total", "status", "purchased_at"
                )
                if customer_id in members
                and status == Receipt.Status.COMPLETED
                and at >= since
            ),
            Decimal("0"),
        )
        assert draft.suggestion["rule_precision"] >= 0.5
    # The young online shoppers are found as such, whatever K is.
    young = [
        c
        for c in cluster_types(result, seeded)
        if c.most_common(1)[0][0] == "young_online"
    ]
    assert young
    assert young[0]["young_online"] / sum(young[0].values()) >= 0.8


def test_suggesting_again_replaces_earlier_drafts_but_keeps_accepted_personas(seeded):
    personas_suggest(k=3)
    kept = Persona.objects.filter(slug__startswith="suggested-").first()
    kept.status = Persona.Status.ACTIVE
    kept.save(update_fields=["status"])

    personas_suggest(k=2)

    suggested = Persona.objects.filter(slug__startswith="suggested-")
    assert suggested.filter(status=Persona.Status.DRAFT).count() == 2
    assert suggested.filter(pk=kept.pk).exists()


def test_command_prints_descriptions_and_rules(seeded, capsys):
    call_command("suggest_personas", k=4, dry_run=True)

    out = capsys.readouterr().out
    assert out.count("rule: ") == 4
    assert "Clustered" in out
    assert not Persona.objects.filter(slug__startswith="suggested-").exists()


def test_demo_seed_creates_personas_matching_the_shopper_types(seeded):
    from segments.services import recompute_all

    recompute_all()
    slugs = dict(
        Customer.objects.filter(persona_assignment__isnull=False).values_list(
            "pk", "persona_assignment__persona__slug"
        )
    )
    expected = {"joe": "occasion", "sarah": "young_online", "femke": "family"}
    expected |= {"bram": "business", "linda": "bargain"}
    assert set(Persona.objects.values_list("slug", flat=True)) >= set(expected)
    for slug, kind in expected.items():
        got = Counter(seeded[pk] for pk, s in slugs.items() if s == slug)
        assert got.most_common(1)[0][0] == kind, (slug, got)


def test_a_suggestion_mirroring_an_existing_persona_is_flagged(seeded):
    # Given an active persona every buyer matches
    everyone = persona_create(
        name="Everyone",
        query="orders >= 1",
        status=Persona.Status.ACTIVE,
        priority=100,
    )
    recompute_all()

    assert everyone.assignments.count() > 0
    personas_suggest(k=2)

    for draft in Persona.objects.filter(status=Persona.Status.DRAFT):
        mirrors = draft.suggestion["mirrors"]
        assert mirrors["name"] == "Everyone"
        assert mirrors["persona"] == everyone.pk
        assert mirrors["overlap"] == 1.0
