"""`bench campaigns`: planning a run measured against a hand-written SQL floor.

The floor (`floor_sql`) is plain SQL written here by hand for the bench campaign
(RFM segments; email, SMS and push; three persona variants of the email; 10 %
held out): the least work any planner must do to write the same rows. The bench
checks that the floor and `run_plan` write the same (customer, status, channel,
message, planned time) rows, then times each, commit included (the deferred
foreign-key checks run at commit), and reports planned rows per second and the
ratio to the floor against the targets of issue 14.
"""

import statistics
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, Delivery
from campaigns.quiet_hours import quiet_hours_end
from campaigns.services.campaigns import campaign_create
from campaigns.services.planning import (
    HOLDOUT_STREAM,
    PREFERENCE_CHANNELS,
    preference_channels,
    run_plan,
)
from crm.models import Store
from personas.models import Persona
from segments.models import CustomerSegmentState, Segment

from .base import BenchSuite, demo_customers_ensure, table_vacuum
from .campaign_sending import send_measure, trigger_measure

SLUG = "bench-campaign"
CHANNELS = ["email", "sms", "push"]
TARGET_RATE = 100_000  # recipients per second, at 100,000 customers
TARGET_RATIO = 2.0  # at most this multiple of the floor


def _campaign_ensure() -> Campaign:
    """The bench campaign: every RFM segment, a message per channel and an email
    variant for three personas."""
    campaign = Campaign.objects.filter(slug=SLUG).first()
    if campaign:
        return campaign
    segments = list(Segment.objects.filter(slug__startswith="rfm-").order_by("pk"))
    if not segments:
        raise CommandError(
            "No RFM segments (migration segments 0002 creates them): run the bench "
            "on a migrated database."
        )
    personas = list(Persona.objects.filter(status=Persona.Status.ACTIVE)[:3])
    messages = [
        {
            "name": f"general-{channel}",
            "channel": channel,
            "subject": "This week at Loyalist",
            "body_text": "Hello {{ first_name }}, this week's offers are in store.",
        }
        for channel in CHANNELS
    ] + [
        {
            "name": f"for-{persona.slug}",
            "channel": "email",
            "persona": persona,
            "subject": "Picked for you",
            "body_text": "Hello {{ first_name }}, picked for you.",
        }
        for persona in personas
    ]
    campaign = campaign_create(
        created_by=None,
        name="Bench campaign",
        slug=SLUG,
        audience={"include_segments": segments},
        channels=CHANNELS,
        messages=messages,
        holdout_percent=10,
    )
    # Planned directly by the bench, never sent: it stays out of every tick.
    return campaign


def _hash_sql(salt: int, stream: int, column: str) -> str:
    """planning.stable_hash written out by hand, like the rest of the floor
    (the floor must not reuse the planner's expressions it is measured against)."""
    salt %= 2147483647
    first = (
        f"(({column}::bigint * 1103515245 + {salt} + {stream * 7919}) %% 2147483647)"
    )
    squared = f"(({first} * {first} + {salt}) %% 2147483629)"
    return f"(({squared} * 1664525 + {stream}) %% 2147483587)"


def floor_sql(campaign: Campaign, run: CampaignRun, due: datetime) -> tuple[str, list]:
    """The bench campaign's rows, by hand: facts once per customer (a
    MATERIALIZED CTE), the channel once per row (a LATERAL subselect)."""
    segments = list(campaign.include_segments.values_list("pk", flat=True))
    messages = {
        (m.channel, m.persona_id): m.pk for m in campaign.messages.order_by("pk")
    }
    personas = Persona.objects.filter(status=Persona.Status.ACTIVE)
    zones = set(Store.objects.values_list("time_zone", flat=True)) | {
        settings.TIME_ZONE
    }
    wake_of = {zone: quiet_hours_end(due, ZoneInfo(zone)) for zone in zones}
    params: list = []

    def ok(channel: str) -> str:
        return f"f.{channel}_ok"

    branches = []
    for name, channel in PREFERENCE_CHANNELS.items():
        if channel in CHANNELS and name != "social_ads":
            branches.append(
                f"WHEN f.pref = '{name}' AND {ok(channel)} THEN '{channel}'"
            )
    for persona in personas:
        for channel in preference_channels(persona.preferred_channels):
            if channel in CHANNELS:
                branches.append(
                    f"WHEN f.persona_id = {persona.pk} AND {ok(channel)} "
                    f"THEN '{channel}'"
                )
    for channel in CHANNELS:
        branches.append(f"WHEN {ok(channel)} THEN '{channel}'")
    email_variants = " ".join(
        f"WHEN {persona} THEN {pk}"
        for (channel, persona), pk in messages.items()
        if channel == "email" and persona
    )
    message = (
        f"CASE x.channel WHEN 'email' THEN CASE f.persona_id {email_variants} "
        f"ELSE {messages[('email', None)]} END "
        + " ".join(
            f"WHEN '{channel}' THEN {messages[(channel, None)]}"
            for channel in CHANNELS[1:]
        )
        + " END"
    )
    wake = "CASE f.zone " + " ".join("WHEN %s THEN %s" for _ in wake_of) + " END"
    for zone, moment in wake_of.items():
        params += [zone, moment]
    consent = (
        "(SELECT k.status FROM crm_consent k WHERE k.customer_id = c.id "
        "AND k.channel = '{channel}' ORDER BY k.recorded_at DESC, k.id DESC "
        "LIMIT 1) = 'granted'"
    )
    in_segments = " OR ".join(f"s.segment_ids @> '[{pk}]'" for pk in segments)
    cap, window = (
        settings.CAMPAIGN_FREQUENCY_CAP,
        settings.CAMPAIGN_FREQUENCY_WINDOW_DAYS,
    )
    unsent = f"(x.channel = '' OR f.recent >= {cap})"
    held = f"(f.draw < {campaign.holdout_percent})"
    quiet = "f.wake <> %s"
    # Only integers of our own rows and fixed words are formatted in; every
    # value is a parameter.
    sql = f"""
        WITH f AS MATERIALIZED (
            SELECT c.id, c.preferred_channel AS pref, pa.persona_id,
                COALESCE(st.time_zone, %s) AS zone,
                {_hash_sql(campaign.salt_number, HOLDOUT_STREAM, "c.id")} %% 100
                    AS draw,
                COALESCE(({consent.format(channel="email")})
                    AND c.email IS NOT NULL AND c.email <> '', false) AS email_ok,
                COALESCE(({consent.format(channel="sms")}) AND c.phone <> '', false)
                    AS sms_ok,
                COALESCE(({consent.format(channel="push")}) AND EXISTS (
                    SELECT 1 FROM crm_pushtoken t
                    WHERE t.customer_id = c.id AND t.revoked_at IS NULL), false)
                    AS push_ok,
                (SELECT count(*) FROM campaigns_delivery d
                 WHERE d.customer_id = c.id
                   AND d.status IN ('planned', 'deferred', 'sending', 'sent')
                   AND d.planned_at > %s AND d.planned_at < %s
                   AND d.run_id <> %s) AS recent
            FROM crm_customer c
            JOIN segments_customersegmentstate s ON s.customer_id = c.id
            LEFT JOIN personas_personaassignment pa ON pa.customer_id = c.id
            LEFT JOIN crm_store st ON st.id = c.home_store_id
            WHERE c.erased_at IS NULL AND ({in_segments})
        ), w AS MATERIALIZED (SELECT f.*, {wake} AS wake FROM f)
        INSERT INTO campaigns_delivery (campaign_id, run_id, customer_id, status,
            reason, channel, message_id, planned_at, attempts, provider_message_id,
            error)
        SELECT %s, %s, f.id,
            CASE WHEN {held} THEN 'held_out' WHEN {unsent} THEN 'skipped'
                 WHEN {quiet} THEN 'deferred' ELSE 'planned' END,
            x.channel,
            CASE WHEN NOT {held} AND {unsent} THEN '' ELSE x.channel END,
            CASE WHEN NOT {held} AND {unsent} THEN NULL ELSE {message} END,
            CASE WHEN NOT {held} AND {unsent} THEN %s WHEN {quiet} THEN f.wake
                 ELSE %s END,
            0, '', ''
        FROM w f
        CROSS JOIN LATERAL (
            SELECT CASE {" ".join(branches)} ELSE '' END AS channel
        ) x
        ORDER BY f.id
    """  # noqa: S608
    window_start = due - timedelta(days=window)
    window_end = due + timedelta(days=window)
    # Parameters in the order they appear.
    ordered = [settings.TIME_ZONE, window_start, window_end, run.pk]
    ordered += params
    ordered += [campaign.pk, run.pk, due, due, due, due]
    return sql, ordered


def _rows(run: CampaignRun) -> set[tuple]:
    return set(
        Delivery.objects.filter(run=run).values_list(
            "customer_id", "status", "channel", "message_id", "planned_at"
        )
    )


def _timed_plan(
    campaign: Campaign, key: str, *, floor: bool
) -> tuple[float, int, CampaignRun]:
    run = CampaignRun.objects.create(
        campaign=campaign, key=f"{key}-{time.time_ns() % 10**9}", due_at=timezone.now()
    )
    started = time.perf_counter()
    with transaction.atomic():
        if floor:
            sql, params = floor_sql(campaign, run, run.due_at)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                written = cursor.rowcount
        else:
            written = run_plan(run=run)
    return time.perf_counter() - started, written, run


def _run_drop(run: CampaignRun) -> None:
    Delivery.objects.filter(run=run).delete()
    run.delete()


class CampaignsBench(BenchSuite):
    name = "campaigns"
    help = (
        "Planning a campaign run against a hand-written INSERT ... SELECT floor; "
        "sending and triggered latency with two real workers and an SMTP server."
    )

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--customers", type=int, default=100_000)
        parser.add_argument("--repeats", type=int, default=3)
        parser.add_argument(
            "--parts",
            default="plan,send,trigger",
            help="Comma-separated parts to run: plan, send, trigger.",
        )
        parser.add_argument(
            "--messages", type=int, default=20_000, help="Emails the send part sends."
        )
        parser.add_argument(
            "--email-rate",
            type=int,
            default=1000,
            help="CAMPAIGN_RATE_EMAIL for the workers, messages per second.",
        )
        parser.add_argument("--trigger-rate", type=float, default=50.0)
        parser.add_argument("--trigger-seconds", type=float, default=30.0)

    def run(self, *, customers: int, parts: str, **options) -> bool:
        if connection.vendor != "postgresql":
            raise CommandError("bench campaigns needs PostgreSQL (DATABASE_URL).")
        wanted = {part.strip() for part in parts.split(",") if part.strip()}
        unknown = wanted - {"plan", "send", "trigger"}
        if unknown:
            raise CommandError(
                f"Unknown --parts {sorted(unknown)}: choose from plan, send, trigger."
            )
        demo_customers_ensure(wanted=customers, stdout=self.stdout)
        if not CustomerSegmentState.objects.exists():
            call_command("rebuild_segments", rfm=True, verbosity=0)
        ok = True
        if "plan" in wanted:
            ok &= self.plan(customers=customers, repeats=options["repeats"])
        if "send" in wanted:
            self.stdout.write(
                f"Sending email with 2 workers (CAMPAIGN_RATE_EMAIL="
                f"{options['email_rate']}):"
            )
            ok &= send_measure(
                messages=options["messages"],
                email_rate=options["email_rate"],
                stdout=self.stdout,
                style=self.style,
            )
        if "trigger" in wanted:
            self.stdout.write("Triggered campaign, segment entry to SMTP:")
            ok &= trigger_measure(
                rate=options["trigger_rate"],
                seconds=options["trigger_seconds"],
                grace=60.0,
                stdout=self.stdout,
                style=self.style,
            )
        return ok

    def plan(self, *, customers: int, repeats: int) -> bool:
        campaign = _campaign_ensure()
        for left in campaign.runs.all():  # an interrupted earlier bench
            _run_drop(left)

        # The same rows, or the floor measures something else.
        seconds, written, ours = _timed_plan(campaign, "bench-check", floor=False)
        self.stdout.write(f"First plan: {written:,} rows in {seconds:.2f} s")
        seconds, _, floor = _timed_plan(campaign, "bench-check-floor", floor=True)
        self.stdout.write(f"First floor: {seconds:.2f} s")
        ours_rows, floor_rows = _rows(ours), _rows(floor)
        _run_drop(ours)
        _run_drop(floor)
        if {r[:4] for r in ours_rows} != {r[:4] for r in floor_rows}:
            raise CommandError(
                f"run_plan and the floor disagree on "
                f"{len(ours_rows ^ floor_rows):,} rows: fix the floor first."
            )
        table_vacuum(Delivery, analyze=True)

        timings: dict[str, list[float]] = {"ours": [], "floor": []}
        for repeat in range(repeats):
            # Alternate which goes first, so neither always meets a warm cache.
            order = ["floor", "ours"] if repeat % 2 else ["ours", "floor"]
            for which in order:
                seconds, written, run = _timed_plan(
                    campaign, f"bench-{which}-{repeat}", floor=which == "floor"
                )
                timings[which].append(seconds)
                self.stdout.write(f"  {which}: {written:,} rows in {seconds:.2f} s")
                _run_drop(run)
                table_vacuum(Delivery)
        ours_s = statistics.median(timings["ours"])
        floor_s = statistics.median(timings["floor"])
        rate = written / ours_s
        ratio = ours_s / floor_s
        self.stdout.write(
            f"Planning {written:,} recipients of {customers:,} customers "
            f"(median of {repeats}, commit included):"
        )
        self.stdout.write(
            f"  run_plan {ours_s:.2f} s ({rate:,.0f}/s); floor {floor_s:.2f} s "
            f"({written / floor_s:,.0f}/s); ratio {ratio:.2f}x"
        )
        self.stdout.write(
            f"  runs: ours {[round(s, 2) for s in timings['ours']]}, "
            f"floor {[round(s, 2) for s in timings['floor']]}"
        )
        met_rate = rate >= TARGET_RATE
        met_ratio = ratio <= TARGET_RATIO
        for label, met, target in (
            ("rate", met_rate, f">= {TARGET_RATE:,}/s"),
            ("ratio to the floor", met_ratio, f"<= {TARGET_RATIO}x"),
        ):
            style = self.style.SUCCESS if met else self.style.ERROR
            self.stdout.write(
                style(f"  {label}: {'met' if met else 'missed'} ({target})")
            )
        return met_rate and met_ratio
