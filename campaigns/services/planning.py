"""Planning a run: one Delivery row per recipient, decided in SQL.

For every customer of the audience one statement decides, in this order:

1. the control group: a stable salted hash of (campaign, customer) below the
   holdout percent holds the customer back (`held_out`), whatever their channels,
   so the two groups compare like with like;
2. the channel: the first channel that reaches the customer (a current consent
   grant and an address, `crm.querysets.channel_address`) from the customer's own
   preferred channel, then their persona's preference, then the preference of the
   first included segment they are in that has one, then the campaign's order; no
   channel: `skipped` with what was missing;
3. the frequency cap: customers who already have as many marketing messages in the
   window (from campaigns of the same or a higher priority) are `skipped`;
4. quiet hours: a message due in the customer's quiet hours (home store's time
   zone, else the shop's) is `deferred` to their end.

The same statement picks each message: the variant for the customer's persona on
that channel, else for one of their segments, else the general one; among several,
weighted by a second stable hash. `reason` says in words which rule picked what.

It runs in three ORM steps (facts, choice, rows; `plan_execute`) so that each
customer's consents and recent messages are looked up once, and writes every row
with one `INSERT ... SELECT` (never a row per customer from Python); the unique
(campaign, run, customer) key makes planning a run twice harmless.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models import Case as SqlCase
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import Exact
from django.utils import timezone

from crm.models import Channel, Consent, Customer, Store
from crm.querysets import channel_address, current_consent
from personas.models import Persona
from segments.models import Segment

from ..models import (
    Campaign,
    CampaignRun,
    Delivery,
    Message,
    PlanChoice,
    PlanColumns,
    PlanFact,
)
from ..quiet_hours import quiet_hours_end

# Statuses that count against the frequency cap: messages sent or on their way.
CAPPED_STATUSES = (
    Delivery.Status.PLANNED,
    Delivery.Status.DEFERRED,
    Delivery.Status.SENDING,
    Delivery.Status.SENT,
)
DUE = (Delivery.Status.PLANNED, Delivery.Status.DEFERRED)
# Channels where the quiet hours apply: the ones that reach a person at once.
# An audience upload and a letter disturb nobody at night.
QUIET_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH)

# The customer's and the persona's preferences name contact channels; these are
# the campaign channels they mean ("phone" calls are not sent by campaigns).
PREFERENCE_CHANNELS = {
    "email": Channel.EMAIL,
    "sms": Channel.SMS,
    "push": Channel.PUSH,
    "social": Channel.SOCIAL_ADS,
    "social_ads": Channel.SOCIAL_ADS,
    "post": Channel.POST,
}

MISSING_ADDRESS = {
    Channel.EMAIL: "no email address",
    Channel.SMS: "no phone number",
    Channel.PUSH: "no device token",
    Channel.SOCIAL_ADS: "no email address or phone number",
    Channel.POST: "no postal address",
}


def preference_channels(names: list[str]) -> list[str]:
    """The campaign channels a stored preference names, in order, once each."""
    channels = (PREFERENCE_CHANNELS.get(name) for name in names)
    return list(dict.fromkeys(channel for channel in channels if channel))


def stable_hash(salt: int, stream: int, column: str = "id") -> ExpressionWrapper:
    """A number in [0, 2^31) from the customer id and a salt, the same on every run
    and database: a multiply-add, a squaring (which breaks the regular steps a
    multiply-add leaves between neighbouring ids) and another multiply-add, modulo
    primes below 2^31 so that every intermediate fits 64-bit integer arithmetic
    (bitwise operators are spelt differently on each database). `stream` separates
    independent draws (control group, message) of one salt."""
    salt %= 2147483647
    value = Cast(F(column), BigIntegerField())
    first = (value * 1103515245 + salt + stream * 7919) % 2147483647
    squared = (first * first + salt) % 2147483629
    mixed = (squared * 1664525 + stream) % 2147483587
    return ExpressionWrapper(mixed, output_field=BigIntegerField())


HOLDOUT_STREAM = 1
MESSAGE_STREAM = 2


@dataclass
class Audience:
    """What planning needs to know about a campaign, read once."""

    campaign: Campaign
    include_segments: list[Segment]
    include_personas: list[int]
    exclude_segments: list[int]
    personas: dict[int, Persona]
    messages: list[Message]
    cap: int
    window: timedelta


def audience_load(campaign: Campaign) -> Audience:
    through = Campaign.include_segments.through
    included_ids = list(
        through.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list("segment_id", flat=True)
    )
    segments = Segment.objects.in_bulk(included_ids)
    persona_ids = list(campaign.include_personas.values_list("id", flat=True))
    return Audience(
        campaign=campaign,
        include_segments=[segments[pk] for pk in included_ids],
        include_personas=persona_ids,
        exclude_segments=list(campaign.exclude_segments.values_list("id", flat=True)),
        personas={
            p.pk: p for p in Persona.objects.filter(status=Persona.Status.ACTIVE)
        },
        messages=list(campaign.messages.order_by("id")),
        cap=campaign.frequency_cap or settings.CAMPAIGN_FREQUENCY_CAP,
        window=timedelta(
            days=campaign.frequency_window_days
            or settings.CAMPAIGN_FREQUENCY_WINDOW_DAYS
        ),
    )


def _in_segment(segment_id: int, path: str = "segment_state__") -> Q:
    """The customer is in the segment; `path` leads to the segment ids ("" from
    the planning steps, which carry them as a column)."""
    return Q(**{f"{path}segment_ids__includes": segment_id})


def audience_customers(audience: Audience, customer_ids=None):
    """The audience's customers: in an included segment or persona, in no excluded
    segment, not erased."""
    included = Q(pk__in=[])
    for segment in audience.include_segments:
        included |= _in_segment(segment.pk)
    if audience.include_personas:
        included |= Q(persona_assignment__persona_id__in=audience.include_personas)
    queryset = Customer.objects.filter(included, erased_at__isnull=True)
    for segment_id in audience.exclude_segments:
        queryset = queryset.exclude(_in_segment(segment_id))
    if customer_ids is not None:
        queryset = queryset.filter(pk__in=customer_ids)
    return queryset.order_by()


class Joined(Func):
    """Text parts joined flat with `||` (none of them is NULL): Concat nests a
    pair per part, which overflows SQLite's parser once a reason lists a few
    channels."""

    arg_joiner = " || "
    template = "(%(expressions)s)"
    output_field = CharField()


# What `<channel>_reach` of a PlanFact says.
REACH_NO_CONSENT = 0
REACH_NO_ADDRESS = 1
REACH_OK = 2


def _why_not(channel: str) -> SqlCase:
    """Why `channel` does not serve the customer, in words."""
    return SqlCase(
        When(
            Q(**{f"{channel}_reach": REACH_NO_CONSENT}),
            then=Value(f"{channel}: no consent"),
        ),
        When(
            Q(**{f"{channel}_reach": REACH_NO_ADDRESS}),
            then=Value(f"{channel}: {MISSING_ADDRESS[channel]}"),
        ),
        default=Value(f"{channel}: no message of the campaign is for them"),
        output_field=CharField(),
    )


def message_targets(audience: Audience) -> dict[str, Q]:
    """Per channel with a message, who has one (as a condition on the planning
    steps' columns): everyone when a general message exists, else the customers
    of the personas and segments its variants are for. Channels without any
    message are missing: planning never picks them."""
    targets: dict[str, Q] = {}
    general: set[str] = set()
    for message in audience.messages:
        if message.persona_id:
            who = Q(persona_id=message.persona_id)
        elif message.segment_id:
            who = _in_segment(message.segment_id, "")
        else:
            general.add(message.channel)
            continue
        targets[message.channel] = targets.get(message.channel, Q(pk__in=[])) | who
    return {**targets, **dict.fromkeys(general, Q())}


def _pick(
    condition: Q, channel: str, reason: list, targets: dict[str, Q]
) -> tuple[When, When]:
    """The pair of branches for "this source picks `channel`": the channel and
    its reason, under the same condition (the channel reaches the customer and
    the campaign has a message for them on it)."""
    parts = [Value(part) if isinstance(part, str) else part for part in reason]
    text = Joined(*parts) if len(parts) > 1 else parts[0]
    serves = condition & Q(**{f"{channel}_reach": REACH_OK}) & targets[channel]
    return When(serves, then=Value(channel)), When(serves, then=text)


def _list_text(channels: list[str]) -> str:
    return ", then ".join(channels)


def _source_branches(
    condition: Q, channels: list[str], describe: str, targets: dict[str, Q]
) -> list[tuple[When, When]]:
    """Branches for one source's ordered list (the channels the campaign has
    messages on): the first that serves the customer wins; the reason names the
    source and why each earlier channel did not."""
    channels = [channel for channel in channels if channel in targets]
    branches = []
    for index, channel in enumerate(channels):
        reason: list = [f"{channel}: {describe} {_list_text(channels)}"]
        for earlier in channels[:index]:
            reason += ["; ", _why_not(earlier)]
        branches.append(_pick(condition, channel, reason, targets))
    return branches


def channel_choice(audience: Audience) -> tuple[SqlCase, SqlCase]:
    """The channel of each customer and its reason, as two CASE expressions over
    a PlanFact whose branches run in the order of the sources (first match wins)."""
    targets = message_targets(audience)
    branches: list[tuple[When, When]] = []
    for name, channel in PREFERENCE_CHANNELS.items():
        if name == "social_ads" or channel not in targets:
            continue
        branches.append(
            _pick(
                Q(preference=name),
                channel,
                [f"{channel}: the customer's own preference"],
                targets,
            )
        )
    for persona in audience.personas.values():
        channels = preference_channels(persona.preferred_channels)
        if channels:
            branches += _source_branches(
                Q(persona_id=persona.pk),
                channels,
                f"persona {persona.name} prefers",
                targets,
            )
    earlier_segments = Q(pk__in=[])
    for segment in audience.include_segments:
        channels = preference_channels(segment.channel_preference)
        if not channels:
            continue
        branches += _source_branches(
            _in_segment(segment.pk, "") & ~earlier_segments,
            channels,
            f"segment {segment.name} prefers",
            targets,
        )
        earlier_segments |= _in_segment(segment.pk, "")
    default = [c for c in audience.campaign.channels if c in MISSING_ADDRESS]
    branches += _source_branches(Q(), default, "the campaign's order:", targets)

    tried = [c for c in default if c in targets] or [
        c for c in MISSING_ADDRESS if c in targets
    ]
    if not tried:
        return Value("", output_field=CharField()), Value(
            "no channel: the campaign has no message", output_field=CharField()
        )
    why_none: list = ["no channel reaches this customer"]
    for channel in tried:
        why_none += ["; ", _why_not(channel)]
    channel = SqlCase(
        *(pair[0] for pair in branches), default=Value(""), output_field=CharField()
    )
    reason = SqlCase(
        *(pair[1] for pair in branches),
        default=Joined(*[Value(p) if isinstance(p, str) else p for p in why_none]),
        output_field=CharField(),
    )
    return channel, reason


def _zones() -> list[str]:
    zones = set(Store.objects.values_list("time_zone", flat=True).distinct())
    zones.add(settings.TIME_ZONE)
    return sorted(zones)


def send_time(due: datetime) -> tuple[Coalesce, SqlCase]:
    """The customer's time zone and when a message due at `due` goes to them:
    `due`, or the end of their quiet hours (worked out in Python per time zone,
    of which there are a handful, and chosen per customer in SQL)."""
    zone = Coalesce(F("home_store__time_zone"), Value(settings.TIME_ZONE))
    whens = []
    for name in _zones():
        wake = quiet_hours_end(due, ZoneInfo(name))
        if wake != due:
            whens.append(When(Q(zone=name), then=Value(wake)))
    return zone, SqlCase(*whens, default=Value(due), output_field=DateTimeField())


def recent_messages(audience: Audience, run: CampaignRun, due: datetime) -> Subquery:
    """Marketing messages the customer has in the cap's window: every one already
    sent (whatever its campaign or priority), and those still to go from runs
    that rank as high as this one (lower ones give way: lower_priority_bump)."""
    recent = (
        Delivery.objects.filter(
            Q(status=Delivery.Status.SENT)
            | Q(campaign__priority__gte=audience.campaign.priority),
            customer=OuterRef("pk"),
            status__in=CAPPED_STATUSES,
            planned_at__gt=due - audience.window,
            planned_at__lt=due + audience.window,
        )
        .exclude(run_id=run.pk)
        .order_by()
        .values("customer")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(recent, output_field=IntegerField()), Value(0))


def _reach(channel: str) -> SqlCase:
    """REACH_OK when the customer's current consent on `channel` is a grant and
    they hold its address, else what is missing (the consent first)."""
    return SqlCase(
        When(
            Exact(current_consent(channel), Consent.Status.GRANTED),
            then=SqlCase(
                When(channel_address(channel), then=Value(REACH_OK)),
                default=Value(REACH_NO_ADDRESS),
            ),
        ),
        default=Value(REACH_NO_CONSENT),
        output_field=IntegerField(),
    )


SHARED_COLUMNS = [field.name for field in PlanColumns._meta.get_fields()]
FACT_COLUMNS = [field.name for field in PlanFact._meta.get_fields()]


def fact_queryset(audience: Audience, run: CampaignRun, due: datetime, customer_ids):
    """Step one, over the audience's customers: each customer's facts, with the
    subqueries (consents, recent messages) evaluated once each."""
    campaign = audience.campaign
    targets = message_targets(audience)
    zone, wake = send_time(due)
    reach = {
        f"{channel}_reach": (
            _reach(channel)
            if channel in targets
            else Value(None, output_field=IntegerField())
        )
        for channel in MISSING_ADDRESS
    }
    return (
        audience_customers(audience, customer_ids)
        .alias(zone=zone)
        .annotate(
            customer_id=F("pk"),
            persona_id=F("persona_assignment__persona_id"),
            segment_ids=F("segment_state__segment_ids"),
            holdout_draw=stable_hash(campaign.salt_number, HOLDOUT_STREAM) % 100,
            recent=recent_messages(audience, run, due),
            wake=wake,
            preference=F("preferred_channel"),
            **reach,
        )
        .values(*FACT_COLUMNS)
    )


def choice_queryset(audience: Audience):
    """Step two, over the facts: the channel and why."""
    channel, reason = channel_choice(audience)
    return PlanFact.objects.annotate(chosen=channel, why=reason).values(
        *SHARED_COLUMNS, "chosen", "why"
    )


def message_choice(audience: Audience) -> tuple[dict, SqlCase]:
    """The message of each PlanChoice row on its chosen channel: the variant for
    the customer's persona, else for one of their segments, else the general
    one; among several, weighted by a stable draw. Returns the draws to alias
    and the CASE."""
    salt = audience.campaign.salt_number
    whens, draws = [], {}
    for condition, messages in _message_conditions(audience):
        total = sum(message.weight for message in messages)
        # One draw per total weight, so variants of equal weight split evenly.
        name = draws.setdefault(total, f"draw_{total}")
        upto = 0
        for message in messages:
            upto += message.weight
            whens.append(
                When(condition & Q(**{f"{name}__lt": upto}), then=Value(message.pk))
            )
    draw_of = {
        name: stable_hash(salt, MESSAGE_STREAM, "customer_id") % total
        for total, name in draws.items()
    }
    return draw_of, SqlCase(*whens, default=None, output_field=BigIntegerField())


def _message_conditions(audience: Audience):
    """(condition on a PlanChoice row, messages) pairs, most specific first."""
    by_channel: dict[str, dict] = {}
    for message in audience.messages:
        slot = by_channel.setdefault(
            message.channel, {"persona": {}, "segment": {}, "general": []}
        )
        if message.persona_id:
            slot["persona"].setdefault(message.persona_id, []).append(message)
        elif message.segment_id:
            slot["segment"].setdefault(message.segment_id, []).append(message)
        else:
            slot["general"].append(message)
    for channel, slot in by_channel.items():
        for persona_id, messages in slot["persona"].items():
            yield Q(chosen=channel, persona_id=persona_id), messages
        for segment_id, messages in slot["segment"].items():
            yield Q(chosen=channel) & _in_segment(segment_id, ""), messages
        if slot["general"]:
            yield Q(chosen=channel), slot["general"]


# The annotations planning selects and the Delivery columns they fill.
PLAN_COLUMNS = {
    "d_campaign": "campaign_id",
    "d_customer": "customer_id",
    "d_run": "run_id",
    "d_status": "status",
    "d_reason": "reason",
    "d_channel": "channel",
    "d_message": "message_id",
    "d_planned": "planned_at",
}


def row_queryset(audience: Audience, run: CampaignRun, due: datetime):
    """Step three, over the choices: everything a Delivery row holds."""
    campaign = audience.campaign
    holdout = Q(holdout_draw__lt=campaign.holdout_percent)
    capped = Q(recent__gte=audience.cap)
    unsent = Q(chosen="") | capped
    quiet = Q(chosen__in=QUIET_CHANNELS) & ~Q(wake=due)
    draws, message = message_choice(audience)
    cap_text = (
        f"frequency cap: already {audience.cap} marketing messages within "
        f"{audience.window.days} days"
    )
    return (
        PlanChoice.objects.alias(**draws)
        .annotate(
            d_campaign=Value(campaign.pk),
            d_customer=F("customer_id"),
            d_run=Value(run.pk),
            d_status=SqlCase(
                When(holdout, then=Value(Delivery.Status.HELD_OUT)),
                When(unsent, then=Value(Delivery.Status.SKIPPED)),
                When(quiet, then=Value(Delivery.Status.DEFERRED)),
                default=Value(Delivery.Status.PLANNED),
                output_field=CharField(),
            ),
            d_reason=SqlCase(
                When(
                    holdout & Q(chosen=""),
                    then=Value(f"control group ({campaign.holdout_percent} %)"),
                ),
                When(
                    holdout,
                    then=Joined(
                        Value(
                            f"control group ({campaign.holdout_percent} %): would get "
                        ),
                        F("why"),
                    ),
                ),
                When(chosen="", then=F("why")),
                When(capped, then=Value(cap_text)),
                When(
                    quiet,
                    then=Joined(F("why"), Value("; quiet hours until the morning")),
                ),
                default=F("why"),
                output_field=CharField(),
            ),
            d_channel=SqlCase(
                When(~holdout & unsent, then=Value("")),
                default=F("chosen"),
                output_field=CharField(),
            ),
            # The control group keeps the message it would have had.
            d_message=SqlCase(
                When(~holdout & unsent, then=Value(None)),
                default=message,
                output_field=BigIntegerField(),
            ),
            # Skipped rows keep the due time; the control group keeps the time it
            # would have been sent, which its conversions are counted from.
            d_planned=SqlCase(
                When(~holdout & unsent, then=Value(due)),
                When(quiet, then=F("wake")),
                default=Value(due),
                output_field=DateTimeField(),
            ),
        )
        .values(*PLAN_COLUMNS)
    )


def plan_execute(
    audience: Audience,
    run: CampaignRun,
    due: datetime,
    customer_ids=None,
    *,
    summary: bool = False,
) -> int | list[dict]:
    """Run the planning statement: write the run's Delivery rows and return how
    many were new, or with `summary` write nothing and return the rows' count `n`
    per `d_status`, `d_channel` and `d_reason` (the audience preview).

    The statement is written by hand around the ORM's three steps because the
    ORM repeats an annotation's expression wherever it is used: the channel CASE
    tests each channel's consent subquery in many branches and the chosen
    channel is read by five columns, so as one ORM query every customer's
    consents were looked up hundreds of times. Here each step is a common table
    expression `AS MATERIALIZED` (computed once, on PostgreSQL and SQLite alike)
    named after the unmanaged model that the next step queries, and the rows go
    in with INSERT ... SELECT (the ORM cannot insert from a query): one statement
    plans the whole audience. Rows already planned for the run stay as they are:
    the unique key turns a second planning into a no-op.
    """
    # In customer order: the sort reads every fact before the first row is
    # written, so no lookup of recent messages ever scans rows this statement is
    # inserting (on a young Delivery table PostgreSQL scans rather than seeks),
    # and the rows reach the indexes in key order.
    rows = row_queryset(audience, run, due).order_by("customer_id")
    if summary:
        rows = (
            rows.values("d_status", "d_channel", "d_reason")
            .annotate(n=Count("customer_id"))
            .order_by()
        )
    steps = [
        (PlanFact, fact_queryset(audience, run, due, customer_ids)),
        (PlanChoice, choice_queryset(audience)),
        (None, rows),
    ]
    parts, params = [], []
    for model, queryset in steps:
        sql, step_params = queryset.query.sql_with_params()
        if model:
            name = connection.ops.quote_name(model._meta.db_table)
            sql = f"{name} AS MATERIALIZED ({sql})"
        parts.append(sql)
        params += step_params
    select = f"WITH {', '.join(parts[:-1])} {parts[-1]}"
    with connection.cursor() as cursor:
        if summary:
            cursor.execute(select, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        # Columns are taken from the select by their aliases, whatever order the
        # ORM selects them in; the columns every new row starts with are
        # literals. ("WHERE true" lets SQLite tell the upsert clause from a join
        # constraint.)
        cursor.execute(
            f"INSERT INTO {Delivery._meta.db_table} "
            f"({', '.join(PLAN_COLUMNS.values())}, attempts, provider_message_id, "
            f"error) SELECT {', '.join(f'q.{alias}' for alias in PLAN_COLUMNS)}, "
            f"0, '', '' FROM ({select}) q WHERE true "
            "ON CONFLICT (campaign_id, run_id, customer_id) DO NOTHING",
            params,
        )
        return cursor.rowcount


def lower_priority_bump(audience: Audience, run: CampaignRun, due: datetime) -> int:
    """Skip other campaigns' unsent messages of lower priority that this run
    pushed over the frequency cap: the higher-priority campaign wins.

    A customer's messages in the window queue up sent ones first, then by
    priority, then by time; an unsent one of lower priority than this campaign
    with `cap` or more messages ahead of it is skipped.
    """
    in_window = Q(
        status__in=CAPPED_STATUSES,
        planned_at__gt=due - audience.window,
        planned_at__lt=due + audience.window,
    )
    ahead = (
        Delivery.objects.filter(in_window, customer=OuterRef("customer"))
        .exclude(pk=OuterRef("pk"))
        .filter(
            Q(status=Delivery.Status.SENT)
            | Q(campaign__priority__gt=OuterRef("campaign__priority"))
            | Q(
                campaign__priority=OuterRef("campaign__priority"),
                planned_at__lt=OuterRef("planned_at"),
            )
            | Q(
                campaign__priority=OuterRef("campaign__priority"),
                planned_at=OuterRef("planned_at"),
                pk__lt=OuterRef("pk"),
            )
        )
        .order_by()
        .values("customer")
        .annotate(n=Count("pk"))
        .values("n")
    )
    bumped = (
        Delivery.objects.filter(
            in_window,
            customer__in=Delivery.objects.filter(run=run, status__in=DUE).values(
                "customer"
            ),
            status__in=DUE,
            campaign__priority__lt=audience.campaign.priority,
        )
        .alias(ahead=Subquery(ahead, output_field=IntegerField()))
        .filter(ahead__gte=audience.cap)
    )
    return bumped.update(
        status=Delivery.Status.SKIPPED,
        channel="",
        reason=(
            f"frequency cap: campaign {audience.campaign.name} has a higher priority"
        ),
    )


@transaction.atomic
def run_plan(
    *, run: CampaignRun, customer_ids=None, due: datetime | None = None
) -> int:
    """Write the run's Delivery rows and return how many were new.

    `customer_ids` (ids or a query of them) limits the audience, and `due` is when
    the messages go if not at the run's due time (a triggered campaign's day run
    plans each entry as it comes).
    """
    audience = audience_load(run.campaign)
    due = due or run.due_at
    written = plan_execute(audience, run, due, customer_ids)
    lower_priority_bump(audience, run, due)
    return written


@dataclass
class AudiencePreview:
    audience: int = 0
    held_out: int = 0
    planned: int = 0
    deferred: int = 0
    skipped: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    skipped_reasons: dict[str, int] = field(default_factory=dict)


def audience_preview(
    *, campaign: Campaign, at: datetime | None = None
) -> AudiencePreview:
    """The figures a run due `at` (default now) would plan, without writing."""
    audience = audience_load(campaign)
    run = CampaignRun(campaign=campaign, key="preview", due_at=at or timezone.now())
    run.pk = 0
    preview = AudiencePreview()
    for row in plan_execute(audience, run, run.due_at, summary=True):
        preview.audience += row["n"]
        status = row["d_status"]
        setattr(preview, status, getattr(preview, status) + row["n"])
        if status in (Delivery.Status.PLANNED, Delivery.Status.DEFERRED):
            channel = row["d_channel"]
            preview.by_channel[channel] = preview.by_channel.get(channel, 0) + row["n"]
        elif status == Delivery.Status.SKIPPED:
            reason = row["d_reason"]
            preview.skipped_reasons[reason] = (
                preview.skipped_reasons.get(reason, 0) + row["n"]
            )
    return preview
