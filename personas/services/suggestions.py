"""Discover personas in the data: k-means over per-customer features.

The features come from one query over the statistics tables (`CustomerStats`,
`CustomerCategoryStats`) and the last 30 days of email opens, one row per customer;
receipts are never loaded. Each cluster is described in words from its real
figures and stored as a draft persona with a generated rule staff can edit.
"""

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Count, DecimalField, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm.formats import money_rounded
from crm.models import (
    Category,
    Channel,
    Consent,
    Contact,
    Customer,
    CustomerCategoryStats,
)

from ..models import Persona, PersonaAssignment
from ..wording import frequency_words
from .figures import persona_figures_refresh
from .personas import persona_create, persona_delete

K_RANGE = range(2, 9)
SILHOUETTE_SAMPLE = 4000
# Conditions a generated rule keeps: the most distinctive features of the cluster.
RULE_CONDITIONS = 3
# A trait is distinctive when the cluster's centre lies this many standard
# deviations from the mean of all buyers.
DISTINCT = 0.35
NEVER_BOUGHT_DAYS = 1000
CENT = Decimal("0.01")
# A cluster whose customers are this share of one persona's mirrors that persona.
MIRROR_SHARE = 0.6
# A consent channel worth naming reaches this share of the cluster.
REACH_SHARE = 0.1
# A city worth naming holds this share of the cluster.
CITY_SHARE = 0.25
LAPSED_DAYS = 300
CHANNEL_WORDS = {
    "store": lambda: _("in store"),
    "online": lambda: _("online"),
    "phone": lambda: _("by phone"),
}
# Consent channels as the persona's preferred contact channels.
CONTACT_CHANNEL = {"social_ads": "social"}
NAMES = ("Alex", "Bo", "Charlie", "Dani", "Eli", "Fenna", "Guus", "Hanna", "Ilse")

BASE_COLUMNS = (
    "recency_days",
    "log_orders",
    "log_spent",
    "log_basket",
    "orders_per_month",
    "age",
    "online_share",
    "phone_share",
    "log_email_opens",
)


@dataclass
class Features:
    customer_ids: np.ndarray
    raw: np.ndarray  # one row per customer, columns as named
    columns: list[str]
    categories: list[tuple[int, str]]  # (id, slug) of the category-share columns
    favourite: np.ndarray  # favourite category id, 0 for none
    cities: np.ndarray  # the customer's city, "" when unknown
    # Channel -> ids of customers whose current consent on it is granted.
    consents: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Cluster:
    label: int
    size: int
    share: float
    description: str
    title: str
    rule: dict
    figures: dict[str, Any]
    rule_matches: int = 0
    rule_precision: float = 0.0
    rule_recall: float = 0.0
    # The existing active persona most of the cluster is assigned to already.
    mirrors: dict[str, Any] | None = None


@dataclass
class Suggestion:
    k: int
    silhouettes: dict[int, float]
    clusters: list[Cluster]
    customer_ids: np.ndarray
    labels: np.ndarray
    seconds: float
    drafts: list[Persona] = field(default_factory=list)


def customer_features(*, now: datetime | None = None) -> Features:
    """Per-customer features of the customers who bought, from the statistics
    tables, in one query.

    Customers who never bought have no recency, frequency or basket to cluster on;
    they are left out (a rule such as `orders = 0` finds them).
    """
    now = now or timezone.now()
    categories = list(
        Category.objects.filter(customer_stats__isnull=False)
        .distinct()
        .order_by("slug")
        .values_list("pk", "slug")
    )
    money = DecimalField(max_digits=14, decimal_places=2)
    spent_in = {
        f"cat_{pk}": Coalesce(
            Subquery(
                CustomerCategoryStats.objects.filter(
                    customer_id=OuterRef("pk"), category_id=pk
                ).values("spent")[:1],
                output_field=money,
            ),
            Decimal("0"),
            output_field=money,
        )
        for pk, _slug in categories
    }
    opens = (
        Contact.objects.filter(
            customer_id=OuterRef("pk"),
            kind=Contact.Kind.EMAIL_OPEN,
            occurred_at__gte=now - timedelta(days=30),
        )
        .order_by()
        .values("customer_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = list(
        Customer.objects.filter(stats__orders__gt=0)
        .order_by("pk")
        .annotate(
            opens=Coalesce(Subquery(opens[:1], output_field=IntegerField()), 0),
            **spent_in,
        )
        .values_list(
            "pk",
            "birth_date",
            "stats__orders",
            "stats__total_spent",
            "stats__first_purchase_at",
            "stats__last_purchase_at",
            "stats__orders_in_store",
            "stats__orders_online",
            "stats__orders_by_phone",
            "stats__favourite_category_id",
            "city",
            "opens",
            *spent_in,
        )
    )
    n = len(rows)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    today = timezone.localdate(now)
    age = np.array(
        [(today - r[1]).days / 365.25 if r[1] else np.nan for r in rows], dtype=float
    )
    orders = np.array([r[2] or 0 for r in rows], dtype=float)
    spent = np.array([float(r[3] or 0) for r in rows], dtype=float)
    first = np.array([(now - r[4]).days if r[4] else np.nan for r in rows], dtype=float)
    recency = np.array(
        [(now - r[5]).days if r[5] else NEVER_BOUGHT_DAYS for r in rows], dtype=float
    )
    channels = np.array([(r[6] or 0, r[7] or 0, r[8] or 0) for r in rows], dtype=float)
    favourite = np.array([r[9] or 0 for r in rows], dtype=np.int64)
    cities = np.array([(r[10] or "").strip().title() for r in rows], dtype=object)
    email_opens = np.array([r[11] for r in rows], dtype=float)
    cat_spent = np.array([[float(v) for v in r[12:]] for r in rows], dtype=float)
    cat_spent = cat_spent.reshape(n, len(categories))

    with np.errstate(divide="ignore", invalid="ignore"):
        basket = np.where(orders > 0, spent / np.maximum(orders, 1), 0.0)
        months = np.maximum(np.nan_to_num(first, nan=0.0) / 30.44, 1.0)
        per_month = orders / months
        total_orders = np.maximum(channels.sum(axis=1), 1)
        online_share = channels[:, 1] / total_orders
        phone_share = channels[:, 2] / total_orders
        cat_share = cat_spent / np.maximum(cat_spent.sum(axis=1, keepdims=True), 1e-9)
    raw = np.column_stack(
        [
            recency,
            np.log1p(orders),
            np.log1p(spent),
            np.log1p(basket),
            per_month,
            age,
            online_share,
            phone_share,
            np.log1p(email_opens),
            cat_share,
        ]
    )
    columns = [*BASE_COLUMNS, *(f"cat:{slug}" for _pk, slug in categories)]
    return Features(ids, raw, columns, categories, favourite, cities)


def _standardize(raw: np.ndarray, columns: list[str]) -> np.ndarray:
    filled = raw.copy()
    for j in range(filled.shape[1]):
        column = filled[:, j]
        missing = np.isnan(column)
        if missing.any():
            column[missing] = np.nanmedian(column) if (~missing).any() else 0.0
    std = filled.std(axis=0)
    z = (filled - filled.mean(axis=0)) / np.where(std > 0, std, 1.0)
    # The category mix is one trait spread over several columns: weigh the group as
    # about two features so it does not outvote RFM, age and channel.
    cats = [j for j, name in enumerate(columns) if name.startswith("cat:")]
    if cats:
        z[:, cats] *= np.sqrt(2 / len(cats))
    return z


def _cluster(z: np.ndarray, k: int | None, seed: int) -> tuple[int, np.ndarray, dict]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    sample = (
        rng.choice(len(z), SILHOUETTE_SAMPLE, replace=False)
        if len(z) > SILHOUETTE_SAMPLE
        else np.arange(len(z))
    )
    silhouettes: dict[int, float] = {}
    if k is None:
        best = None
        for candidate in K_RANGE:
            if candidate >= len(sample):
                break
            model = KMeans(n_clusters=candidate, n_init=3, random_state=seed)
            labels = model.fit_predict(z[sample])
            silhouettes[candidate] = float(silhouette_score(z[sample], labels))
            if best is None or silhouettes[candidate] > silhouettes[best]:
                best = candidate
        k = best or 2
    model = KMeans(n_clusters=k, n_init=5, random_state=seed)
    return k, model.fit_predict(z), silhouettes


def _percentile(values: np.ndarray, q: float) -> float:
    values = values[~np.isnan(values)]
    return float(np.percentile(values, q)) if len(values) else float("nan")


def granted_consents() -> dict[str, np.ndarray]:
    """Channel -> ids of the customers whose current consent on it is granted."""
    granted: dict[str, list[int]] = defaultdict(list)
    for customer_id, channel in (
        Consent.objects.latest_per_channel()
        .filter(status=Consent.Status.GRANTED)
        .order_by()
        .values_list("customer_id", "channel")
    ):
        granted[channel].append(customer_id)
    return {c: np.array(ids, dtype=np.int64) for c, ids in granted.items()}


def _reach_words(consent_shares: dict[str, float]) -> str:
    """Where to reach a cluster: its consented channels, most consented first."""
    labels = dict(Channel.choices)
    usable = sorted(
        ((c, share) for c, share in consent_shares.items() if share >= REACH_SHARE),
        key=lambda pair: -pair[1],
    )
    if not usable:
        return _("no consented channel: ask at the till or on the receipt")
    return ", ".join(
        _("%(channel)s (%(share)d%% consented)")
        % {"channel": labels.get(c, c), "share": round(share * 100)}
        for c, share in usable
    )


def _describe(
    features: Features, members: np.ndarray, total: int
) -> tuple[str, str, dict[str, Any]]:
    """The cluster written as a persona (who, how they buy, where to reach them),
    a short title and the figures behind the words."""
    raw, cols = features.raw, features.columns
    col = {name: j for j, name in enumerate(cols)}
    everyone = raw
    part = raw[members]
    size = int(members.sum())
    age_low = _percentile(part[:, col["age"]], 20)
    age_high = _percentile(part[:, col["age"]], 80)
    basket = np.expm1(part[:, col["log_basket"]])
    buyers = basket > 0
    median_basket = float(np.median(basket[buyers])) if buyers.any() else 0.0
    all_baskets = np.expm1(everyone[:, col["log_basket"]])
    overall_basket = (
        float(np.median(all_baskets[all_baskets > 0])) if (all_baskets > 0).any() else 0
    )
    per_month = float(np.median(part[:, col["orders_per_month"]]))
    online = float(np.mean(part[buyers, col["online_share"]])) if buyers.any() else 0
    phone = float(np.mean(part[buyers, col["phone_share"]])) if buyers.any() else 0
    store = 1 - online - phone
    recency = float(np.median(part[:, col["recency_days"]]))
    openers = float(np.mean(part[:, col["log_email_opens"]] > 0))
    cat_cols = [j for j, name in enumerate(cols) if name.startswith("cat:")]
    cat_mix = part[:, cat_cols].mean(axis=0) if cat_cols else np.array([])
    top_categories = [
        cols[cat_cols[j]][4:] for j in np.argsort(-cat_mix)[:2] if cat_mix[j] > 0.15
    ]
    channel, channel_share = max(
        (("online", online), ("store", store), ("phone", phone)),
        key=lambda pair: pair[1],
    )
    towns, counts = np.unique(
        features.cities[members][features.cities[members] != ""], return_counts=True
    )
    top_city = (
        (str(towns[np.argmax(counts)]), float(counts.max() / size))
        if len(towns)
        else None
    )
    member_ids = features.customer_ids[members]
    consent_shares = {
        channel_name: round(float(np.isin(member_ids, ids).mean()), 3)
        for channel_name, ids in features.consents.items()
    }
    if overall_basket and median_basket < 0.6 * overall_basket:
        basket_size = _("small")
    elif overall_basket and median_basket > 1.6 * overall_basket:
        basket_size = _("large")
    else:
        basket_size = _("average")

    who = [
        ngettext(
            "about %(count)s customer (%(share)d%%)",
            "about %(count)s customers (%(share)d%%)",
            size,
        )
        % {"count": f"{size:,}", "share": round(size / total * 100)}
    ]
    if not np.isnan(age_low):
        who.append(
            _("mostly aged %(low)d-%(high)d")
            % {"low": round(age_low), "high": round(age_high)}
        )
    if top_city is not None and top_city[1] >= CITY_SHARE:
        who.append(
            _("often from %(city)s (%(share)d%%)")
            % {"city": top_city[0], "share": round(top_city[1] * 100)}
        )
    if recency >= LAPSED_DAYS:
        months = round(recency / 30.44)
        how = [
            ngettext(
                "not for about a month now",
                "not for about %(months)d months now",
                months,
            )
            % {"months": months}
        ]
    else:
        how = [
            _("%(channel)s (%(share)d%% of orders), %(frequency)s")
            % {
                "channel": CHANNEL_WORDS[channel](),
                "share": round(channel_share * 100),
                "frequency": frequency_words(per_month),
            }
        ]
    how.append(
        _("%(size)s baskets of about %(amount)s")
        % {
            "size": basket_size,
            "amount": money_rounded(Decimal(str(round(median_basket, 2)))),
        }
    )
    if top_categories:
        how.append(
            _("mostly %(categories)s") % {"categories": " and ".join(top_categories)}
        )
    reach = _reach_words(consent_shares)
    if openers >= 0.5:
        reach += "; " + _("most open their emails")
    elif openers < 0.2:
        reach += "; " + _("few open their emails")
    words = {"who": ", ".join(who), "how": ", ".join(how), "reach": reach}
    description = " ".join(
        [
            _("Who: %(who)s.") % words,
            _("How they buy: %(how)s.") % words,
            _("Reaching them: %(reach)s.") % words,
        ]
    )
    title_bits = [
        CHANNEL_WORDS[channel]() if recency < LAPSED_DAYS else _("lapsed"),
        f"{round(age_low)}-{round(age_high)}" if not np.isnan(age_low) else "",
        _("%(size)s baskets") % {"size": basket_size},
        *top_categories[:1],
    ]
    title = " · ".join(str(bit) for bit in title_bits if bit)
    figures = {
        "customers": size,
        "share": round(size / total, 4),
        "age_p20": None if np.isnan(age_low) else round(age_low),
        "age_p80": None if np.isnan(age_high) else round(age_high),
        "city": top_city[0] if top_city else "",
        "median_basket": round(median_basket, 2),
        "orders_per_month": round(per_month, 3),
        "channels": {"store": round(store, 3), "online": round(online, 3)}
        | {"phone": round(phone, 3)},
        "consents": consent_shares,
        "median_days_since_purchase": round(recency),
        "email_openers": round(openers, 3),
        "categories": top_categories,
        "words": words,
    }
    return description, title, figures


def _mirrors(
    member_ids: np.ndarray, assignments: dict[int, np.ndarray], names: dict[int, str]
) -> dict[str, Any] | None:
    """The active persona holding most of the cluster's customers, when it holds at
    least MIRROR_SHARE of them: the suggestion mostly repeats that persona."""
    best = None
    for persona_id, ids in assignments.items():
        share = float(np.isin(member_ids, ids).mean()) if len(member_ids) else 0.0
        if share >= MIRROR_SHARE and (best is None or share > best[1]):
            best = (persona_id, share)
    if best is None:
        return None
    return {"persona": best[0], "name": names[best[0]], "overlap": round(best[1], 3)}


def active_assignments() -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Active persona id -> its assigned customer ids, and the personas' names."""
    names = dict(
        Persona.objects.filter(status=Persona.Status.ACTIVE).values_list("pk", "name")
    )
    grouped: dict[int, list[int]] = defaultdict(list)
    for customer_id, persona_id in (
        PersonaAssignment.objects.filter(persona_id__in=names)
        .order_by()
        .values_list("customer_id", "persona_id")
    ):
        grouped[persona_id].append(customer_id)
    return {pk: np.array(ids, dtype=np.int64) for pk, ids in grouped.items()}, names


def _rule(features: Features, members: np.ndarray, z: np.ndarray) -> dict:
    """A rule of the cluster's most distinctive traits, in the segment language."""
    raw, col = features.raw, {n: j for j, n in enumerate(features.columns)}
    centre = z[members].mean(axis=0)
    part = raw[members]
    candidates: list[tuple[float, dict]] = []

    def leaf(name: str, op: str, value: Any) -> dict:
        return {"field": name, "op": op, "value": value}

    def spot(name: str) -> float:
        return float(centre[col[name]])

    if abs(spot("age")) >= DISTINCT:
        low, high = (
            _percentile(part[:, col["age"]], 10),
            _percentile(part[:, col["age"]], 90),
        )
        if not np.isnan(low):
            candidates.append(
                (abs(spot("age")), leaf("age", "between", [int(low), int(high) + 1]))
            )
    if spot("phone_share") >= DISTINCT:
        candidates.append(
            (spot("phone_share"), leaf("purchase_channel", "eq", "phone"))
        )
    elif spot("online_share") >= DISTINCT:
        candidates.append(
            (spot("online_share"), leaf("purchase_channel", "eq", "online"))
        )
    elif spot("online_share") <= -DISTINCT:
        candidates.append(
            (-spot("online_share"), leaf("purchase_channel", "eq", "store"))
        )
    recency = part[:, col["recency_days"]]
    if spot("recency_days") >= DISTINCT:
        days = int(_percentile(recency, 20))
        candidates.append(
            (spot("recency_days"), leaf("last_purchase", "before_days", days))
        )
    elif spot("recency_days") <= -DISTINCT:
        days = int(_percentile(recency, 80)) + 1
        candidates.append(
            (-spot("recency_days"), leaf("last_purchase", "within_days", days))
        )
    basket = np.expm1(part[:, col["log_basket"]])
    if spot("log_basket") >= DISTINCT:
        value = round(_percentile(basket[basket > 0], 20))
        candidates.append((spot("log_basket"), leaf("avg_order_value", "gte", value)))
    elif spot("log_basket") <= -DISTINCT:
        value = round(_percentile(basket[basket > 0], 80)) + 1
        candidates.append((-spot("log_basket"), leaf("avg_order_value", "lte", value)))
    orders = np.expm1(part[:, col["log_orders"]])
    if spot("log_orders") >= DISTINCT:
        candidates.append(
            (spot("log_orders"), leaf("orders", "gte", int(_percentile(orders, 20))))
        )
    elif spot("log_orders") <= -DISTINCT:
        candidates.append(
            (-spot("log_orders"), leaf("orders", "lte", int(_percentile(orders, 80))))
        )
    categories = dict(features.categories)
    favourites = features.favourite[members]
    if len(favourites):
        values, counts = np.unique(favourites, return_counts=True)
        top = int(values[np.argmax(counts)])
        if top and counts.max() / len(favourites) >= 0.5:
            slug = categories.get(top)
            weight = spot(f"cat:{slug}") if slug else 0.0
            if slug and weight >= DISTINCT:
                candidates.append((weight, leaf("favourite_category", "eq", slug)))
    opens = np.expm1(part[:, col["log_email_opens"]])
    if spot("log_email_opens") >= DISTINCT:
        value = max(1, int(_percentile(opens, 20)))
        candidates.append(
            (spot("log_email_opens"), leaf("email_opens_30d", "gte", value))
        )
    chosen = [c for _w, c in sorted(candidates, key=lambda p: -p[0])[:RULE_CONDITIONS]]
    return {"all": chosen}


def _rule_quality(cluster: Cluster, ids: np.ndarray, members: np.ndarray) -> None:
    from segments.compiler import context_build, rule_check, rule_condition

    checked = rule_check(cluster.rule)
    matched = np.fromiter(
        Customer.objects.filter(rule_condition(checked, context_build()))
        .order_by()
        .values_list("pk", flat=True),
        dtype=np.int64,
    )
    inside = np.isin(matched, ids[members]).sum()
    cluster.rule_matches = len(matched)
    cluster.rule_precision = float(inside / len(matched)) if len(matched) else 0.0
    cluster.rule_recall = float(inside / members.sum()) if members.sum() else 0.0


def personas_suggest(
    *, k: int | None = None, seed: int = 0, save: bool = True
) -> Suggestion:
    """Cluster the customers and, with `save`, replace earlier suggested drafts
    with one draft persona per cluster.

    K is chosen by the silhouette score on a sample when not given.
    """
    started = time.monotonic()
    features = customer_features()
    total = len(features.customer_ids)
    if total < 2:
        return Suggestion(0, {}, [], features.customer_ids, np.array([]), 0.0)
    features.consents = granted_consents()
    assignments, names = active_assignments()
    z = _standardize(features.raw, features.columns)
    k = min(k, total) if k else None
    k, labels, silhouettes = _cluster(z, k, seed)
    clusters = []
    for label in range(k):
        members = labels == label
        if not members.any():
            continue
        description, title, figures = _describe(features, members, total)
        cluster = Cluster(
            label=label,
            size=int(members.sum()),
            share=float(members.mean()),
            description=description,
            title=title,
            rule=_rule(features, members, z),
            figures=figures,
        )
        _rule_quality(cluster, features.customer_ids, members)
        cluster.mirrors = _mirrors(features.customer_ids[members], assignments, names)
        clusters.append(cluster)
    clusters.sort(key=lambda c: -c.size)
    result = Suggestion(
        k=k,
        silhouettes=silhouettes,
        clusters=clusters,
        customer_ids=features.customer_ids,
        labels=labels,
        seconds=time.monotonic() - started,
    )
    if save:
        result.drafts = _drafts_replace(clusters)
        # Drafts show the customers and revenue their rules match before accepting.
        persona_figures_refresh()
    return result


@transaction.atomic
def _drafts_replace(clusters: list[Cluster]) -> list[Persona]:
    for persona in Persona.objects.filter(status=Persona.Status.DRAFT).exclude(
        suggestion={}
    ):
        persona_delete(persona=persona)
    # Unique per run: drafts of an earlier run that staff accepted keep their slugs.
    stamp = uuid.uuid4().hex[:8]
    drafts = []
    for index, cluster in enumerate(clusters):
        figures = cluster.figures
        channels = sorted(
            (c for c, share in figures["channels"].items() if share >= 0.2),
            key=lambda c: -figures["channels"][c],
        )
        name = NAMES[index % len(NAMES)]
        drafts.append(
            persona_create(
                name=f"{name} (suggested)",
                slug=f"suggested-{stamp}-{index + 1}",
                title=cluster.title[:120],
                avatar="?",
                rules=cluster.rule,
                status=Persona.Status.DRAFT,
                age_min=figures["age_p20"],
                age_max=figures["age_p80"],
                typical_basket=Decimal(str(figures["median_basket"])).quantize(CENT),
                purchases_per_month=Decimal(
                    str(min(figures["orders_per_month"], 999))
                ).quantize(CENT),
                buying_channels=channels,
                location=figures["city"],
                preferred_channels=[
                    CONTACT_CHANNEL.get(c, c)
                    for c, share in sorted(
                        figures["consents"].items(), key=lambda pair: -pair[1]
                    )
                    if share >= REACH_SHARE
                ],
                notes=cluster.description,
                sources=[Persona.Source.CLUSTERING],
                source_notes=(
                    f"k-means cluster {cluster.label + 1} of {len(clusters)}. The rule "
                    f"matches {cluster.rule_matches:,} customers; "
                    f"{cluster.rule_precision:.0%} of them are in the cluster and "
                    f"it covers {cluster.rule_recall:.0%} of the cluster."
                ),
                suggestion={
                    "description": cluster.description,
                    "figures": figures,
                    "rule_matches": cluster.rule_matches,
                    "rule_precision": round(cluster.rule_precision, 3),
                    "rule_recall": round(cluster.rule_recall, 3),
                    "mirrors": cluster.mirrors,
                },
            )
        )
    return drafts
