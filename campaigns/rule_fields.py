"""Segment rule fields on one named campaign: "opened campaign X within N days".

Every message sent, open, click, unsubscribe and bounce of a campaign is a crm
Contact whose payload holds the campaign's id (`services.sending.outcomes_record`,
`tracking`). Each field here holds for customers with a contact of its kind naming
the campaign in the last N days, counted from the rule's clock:

    campaign_opened_within_days("spring-collection", 30)

is `{"field": "campaign_opened_within_days", "op": "eq",
"value": {"campaign": "spring-collection", "days": 30}}`, the shape of
`bought_category_within_days`. Segments cannot import campaigns, so the fields are
registered with the segment vocabulary from `CampaignsConfig.ready`.
"""

from dataclasses import dataclass
from typing import Any

from django.db.models import (
    DateTimeField,
    Exists,
    Expression,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Contact
from segments.explanations import days_ago_text, time_wanted_text, whole_days_since
from segments.fields import (
    Context,
    FieldSpec,
    Reference,
    check_named_days,
    days_ago,
    in_pass,
    shifted,
)

from .models import Campaign

ARGUMENT = "campaign"


@dataclass(frozen=True)
class _Outcome:
    field: str
    kind: str
    help: str
    # "%(campaign)s" and "%(when)s" ("3 days ago"), for explanations.
    last: Promise
    never: Promise


OUTCOMES = (
    _Outcome(
        "campaign_received_within_days",
        Contact.Kind.MESSAGE_RECEIVED,
        "Was sent a message of a campaign in the last N days (any channel).",
        gettext_lazy("last received campaign %(campaign)s %(when)s"),
        gettext_lazy("never received campaign %(campaign)s"),
    ),
    _Outcome(
        "campaign_opened_within_days",
        Contact.Kind.EMAIL_OPEN,
        "Opened an email of a campaign in the last N days.",
        gettext_lazy("last opened campaign %(campaign)s %(when)s"),
        gettext_lazy("never opened campaign %(campaign)s"),
    ),
    _Outcome(
        "campaign_clicked_within_days",
        Contact.Kind.EMAIL_CLICK,
        "Clicked a link in an email of a campaign in the last N days.",
        gettext_lazy("last clicked in campaign %(campaign)s %(when)s"),
        gettext_lazy("never clicked in campaign %(campaign)s"),
    ),
    _Outcome(
        "campaign_unsubscribed_within_days",
        Contact.Kind.UNSUBSCRIBE,
        "Unsubscribed through the link of a campaign's email in the last N days.",
        gettext_lazy("unsubscribed from campaign %(campaign)s %(when)s"),
        gettext_lazy("never unsubscribed from campaign %(campaign)s"),
    ),
    _Outcome(
        "campaign_bounced_within_days",
        Contact.Kind.EMAIL_BOUNCE,
        "An email of a campaign to the customer bounced in the last N days.",
        gettext_lazy("an email of campaign %(campaign)s last bounced %(when)s"),
        gettext_lazy("no email of campaign %(campaign)s ever bounced"),
    ),
)


def _campaign_id(slug: str) -> int | None:
    # The payload keeps the id; the rule names the slug, resolved at each compile.
    return Campaign.objects.filter(slug=slug).values_list("pk", flat=True).first()


def _contacts(kind: str, campaign_id: int) -> QuerySet[Contact]:
    return Contact.objects.filter(
        customer_id=OuterRef("pk"), kind=kind, payload__campaign=campaign_id
    )


def _latest(kind: str, campaign_id: int | None) -> Expression:
    if campaign_id is None:
        return Value(None, output_field=DateTimeField())
    latest = _contacts(kind, campaign_id).order_by("-occurred_at")
    return Subquery(latest.values("occurred_at")[:1], output_field=DateTimeField())


def _spec(outcome: _Outcome) -> FieldSpec:
    def condition(ctx: Context, op: str, value: Any) -> Q:
        campaign_id = _campaign_id(value[ARGUMENT])
        if campaign_id is None:
            # Deleted after the rule was checked (only drafts can be): nobody got it.
            return Q(pk__in=[])
        rows = _contacts(outcome.kind, campaign_id).filter(
            occurred_at__gte=days_ago(ctx, value["days"])
        )
        return Q(Exists(in_pass(rows, ctx)))

    def candidates(ctx: Context, op: str, value: Any) -> list[Expression]:
        # True until N days after the latest such contact; a newer contact marks
        # the customer dirty and is evaluated then.
        campaign_id = _campaign_id(value[ARGUMENT])
        if campaign_id is None:
            return []
        return [shifted(_latest(outcome.kind, campaign_id), value["days"])]

    def shown(ctx: Context, value: Any) -> Expression:
        return _latest(outcome.kind, _campaign_id(value[ARGUMENT]))

    def says(ctx: Context, value: Any, latest: Any) -> str:
        campaign = value[ARGUMENT]
        customer = (
            outcome.never % {"campaign": campaign}
            if latest is None
            else outcome.last
            % {
                "campaign": campaign,
                "when": days_ago_text(whole_days_since(ctx.now, latest)),
            }
        )
        return _("%(customer)s; the rule wants %(wanted)s") % {
            "customer": customer,
            "wanted": time_wanted_text("within_days", value["days"]),
        }

    return FieldSpec(
        name=outcome.field,
        kind="object",
        ops=frozenset({"eq"}),
        help=f'{outcome.help} {{"campaign": slug, "days": N}}.',
        condition=condition,
        check_value=check_named_days(ARGUMENT),
        time_candidates=candidates,
        refers_to=ARGUMENT,
        argument=ARGUMENT,
        shown=shown,
        says=says,
    )


CAMPAIGN_FIELDS = tuple(_spec(outcome) for outcome in OUTCOMES)
CAMPAIGN_REFERENCE = Reference(
    load=lambda: Campaign.objects.values_list("slug", flat=True),
    fix="use the slug of an existing campaign",
)
