"""Hooks: how the core tells the apps built on it that something happened.

`crm` is the core and imports none of the apps built on it (`segments`, `personas`,
`campaigns`). When the core has news for them (a contact was recorded) or a page of
its own shows what a later app knows (a customer's segments), it calls a hook, and
each later app registers its receivers in its `AppConfig.ready()`:

    class SegmentsConfig(AppConfig):
        def ready(self):
            contacts_recorded.register(customers_mark_dirty)

A hook is an explicit, ordered list of callables, like a Django signal without the
indirection: `send()` calls every receiver with the same keyword arguments, in the
caller's transaction, and lets exceptions propagate (a receiver that fails fails
the write it was told about, so the two never disagree). Each hook below documents
its arguments and what a receiver may do.
"""

from collections.abc import Callable
from typing import Any


class Hook:
    """An ordered list of receivers that the core calls with keyword arguments."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._receivers: list[Callable[..., Any]] = []

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._receivers)} receiver(s)>"

    @property
    def receivers(self) -> tuple[Callable[..., Any], ...]:
        return tuple(self._receivers)

    def register(self, receiver: Callable[..., Any]) -> Callable[..., Any]:
        """Add a receiver (once: `ready()` may run more than once in tests)."""
        if receiver not in self._receivers:
            self._receivers.append(receiver)
        return receiver

    def unregister(self, receiver: Callable[..., Any]) -> None:
        if receiver in self._receivers:
            self._receivers.remove(receiver)

    def send(self, **kwargs: Any) -> list[Any]:
        """Call every receiver in registration order; return their results."""
        return [receiver(**kwargs) for receiver in self._receivers]


# Called with `contacts=list[ContactRef]` inside the transaction that records them
# (a sale, an import batch, a contact posted by an integration). Receivers write what
# must commit with the contacts (the segment engine marks customers for
# re-evaluation) and defer any task to `transaction.on_commit`.
contacts_recorded = Hook("contacts_recorded")

# Called with `request` and `customer` when the admin renders a customer's page.
# Each receiver returns an HTML fragment shown under the form (already escaped, a
# SafeString), or None when the signed-in user may not see it or it has nothing to
# say. The segment engine lists the customer's segments here.
customer_admin_panels = Hook("customer_admin_panels")

# Called with no arguments when a webhook subscription form is built; each receiver
# returns the slugs a subscription may limit its segment events to (the segment
# engine returns every segment's slug).
webhook_segment_slugs = Hook("webhook_segment_slugs")

# Called with `request` when the admin builds the customer list's filters; each
# receiver returns a list of `SimpleListFilter` classes to show first (the segment
# engine adds "members of a segment", which the segment page links to).
customer_admin_list_filters = Hook("customer_admin_list_filters")

# Called with no arguments at the end of `seed_demo`, once the demo's customers,
# receipts and statistics are written; receivers add their own demo rows (the
# personas app creates the demo personas).
demo_seeded = Hook("demo_seeded")

# Called with `customer` when Loyalist exports everything it holds about a customer
# (an access request); each receiver returns a dict of sections to add, in a fixed
# number of queries (the segment engine adds "segments", personas add "persona").
customer_data_export_sections = Hook("customer_data_export_sections")

# Called with `customer_ids=set[int] | None` once statistics were recomputed: at the
# end of a receipts import's transaction (the customers it touched), and after a
# whole-base `customer_stats_rebuild` (None: every customer). Receivers derive what
# depends on the statistics of the whole base (the segment engine recomputes its RFM
# thresholds); they run in the caller's transaction, if any.
stats_rebuilt = Hook("stats_rebuilt")

# Called with `request` when the admin renders its home page (the dashboard), after
# the core's own cards. Each receiver returns an HTML fragment of one or more cards
# (already escaped, a SafeString), or None when the signed-in user may not see it.
# Receivers keep their figures in the cache through `crm.dashboard.figures_cached`,
# so a warm page costs them no query (the segment engine adds segment sizes, RFM
# and movements; personas add customers and revenue per persona).
dashboard_panels = Hook("dashboard_panels")

# Called with no arguments when the API builds the customer resource (its output
# serializer, and the schema from it); each receiver returns a dict of read-only
# serializer fields, shown after "stats" (the segment engine adds "segments",
# personas add "persona"). A field reads only what `customer_api_queryset` loaded
# or what it caches in the serializer's context, so a page of customers costs the
# same queries as one.
customer_api_fields = Hook("customer_api_fields")

# Called with `queryset` (of customers) whenever the API reads customers for the
# customer resource; each receiver returns the queryset with what its fields read
# selected or prefetched.
customer_api_queryset = Hook("customer_api_queryset")

# Called with no arguments when the API builds the customer list's filters; each
# receiver returns a dict of django-filter filters to add (the segment engine adds
# `?segment=`, personas `?persona=`).
customer_api_filters = Hook("customer_api_filters")

# Called with `customer_id` inside customer_erase's transaction, every time a
# customer is erased; receivers scrub whatever personal data their own tables keep
# about the person (campaigns blank their deliveries' provider error texts).
customer_erased = Hook("customer_erased")
