"""A campaign's lifecycle: create and edit it as a draft, schedule it, pause,
resume or cancel it.

Once a campaign is scheduled, only fields that cannot change who gets what
(its name, the cost figures, ...) may change, and every change is recorded as a
`CampaignChange` with who made it and the old and new values. Every lifecycle
step is recorded the same way.
"""

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from crm.errors import field_error
from crm.models import Channel
from personas.models import Persona
from segments.models import Segment

from ..models import Campaign, CampaignChange, CampaignRun, Delivery, Message
from ..personalisation import message_validate
from ..recurrence import next_occurrence, recurrence_parse, recurrence_validate
from .planning import preference_channels

Status = Campaign.Status
Kind = Campaign.Kind

# Fields that may change once a campaign is scheduled: none of them changes who
# receives what, or when.
SAFE_AFTER_SCHEDULING = frozenset(
    {
        "name",
        "description",
        "priority",
        "frequency_cap",
        "frequency_window_days",
        "costs",
        "attribution_days",
    }
)
PLAIN_FIELDS = frozenset(
    {
        *SAFE_AFTER_SCHEDULING,
        "kind",
        "channels",
        "holdout_percent",
        "send_at",
        "recurrence",
    }
)
UPDATABLE = frozenset({*PLAIN_FIELDS, "audience", "trigger", "messages"})
AUDIENCE_KEYS = ("include_segments", "include_personas", "exclude_segments")
MESSAGE_KEYS = frozenset(Message.EDITABLE_FIELDS)
# Statuses a campaign can be paused from, and so resumed to.
RUNNING = frozenset({Status.SCHEDULED, Status.SENDING, Status.ACTIVE})
FINISHED = frozenset({Status.SENT, Status.CANCELLED})


# Validation ----------------------------------------------------------------------


def _channels_check(channels: Any, *, field: str = "channels") -> list[str]:
    if not isinstance(channels, list | tuple):
        raise field_error(
            field, _('Give the channels as a list, for example ["email"].'), "invalid"
        )
    unknown = [c for c in channels if c not in Channel.values]
    if unknown:
        raise field_error(
            field,
            _("Unknown channel %(channel)s; use %(choices)s."),
            "invalid_channel",
            channel=unknown[0],
            choices=", ".join(Channel.values),
        )
    return list(dict.fromkeys(channels))


def _json(value: Any) -> Any:
    """`value` as the JSON a change log row stores (models by slug or name)."""
    if isinstance(value, Segment | Persona):
        return value.slug
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _change_record(
    *, campaign: Campaign, user: AbstractBaseUser | None, action: str, details: dict
) -> CampaignChange:
    return CampaignChange.objects.create(
        campaign=campaign,
        changed_by=user if user is not None and user.is_authenticated else None,
        action=action,
        details=_json(details),
    )


def _locked(campaign: Campaign) -> Campaign:
    """The campaign's row, locked: two clicks on "schedule" queue up here and the
    second sees what the first did."""
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    for name in ("status", "next_run_at", "updated_at"):
        setattr(campaign, name, getattr(locked, name))
    return locked


# Parts ----------------------------------------------------------------------------


def _audience_set(*, campaign: Campaign, audience: dict) -> None:
    unknown = set(audience) - set(AUDIENCE_KEYS)
    if unknown:
        raise field_error(
            "audience",
            _("Unknown audience key %(key)s; use %(keys)s."),
            "invalid",
            key=sorted(unknown)[0],
            keys=", ".join(AUDIENCE_KEYS),
        )
    for key in AUDIENCE_KEYS:
        if key in audience:
            getattr(campaign, key).set(audience[key] or [])


def _audience(campaign: Campaign) -> dict[str, list]:
    return {key: list(getattr(campaign, key).all()) for key in AUDIENCE_KEYS}


def _trigger_apply(*, campaign: Campaign, trigger: dict | None) -> None:
    trigger = trigger or {}
    campaign.trigger_segment = trigger.get("segment")
    campaign.trigger_delay_minutes = trigger.get("delay_minutes", 0) or 0
    campaign.trigger_reentry_days = trigger.get("reentry_days", 30) or 30


def _trigger(campaign: Campaign) -> dict:
    return {
        "segment": campaign.trigger_segment,
        "delay_minutes": campaign.trigger_delay_minutes,
        "reentry_days": campaign.trigger_reentry_days,
    }


# What a message's edit may change; its campaign and name identify it.
MESSAGE_COLUMNS = [name for name in Message.EDITABLE_FIELDS if name != "name"]


def _messages_set(*, campaign: Campaign, messages: list[dict]) -> None:
    """Replace the campaign's messages (a draft's only: deliveries point at them)."""
    built = []
    names = set()
    for index, data in enumerate(messages):
        prefix = f"messages[{index}]"
        unknown = set(data) - MESSAGE_KEYS
        if unknown:
            raise field_error(
                f"{prefix}.{sorted(unknown)[0]}", _("Unknown message field."), "invalid"
            )
        name = (data.get("name") or "").strip()
        if not name:
            raise field_error(
                f"{prefix}.name", _("Give the message a name."), "required"
            )
        if name in names:
            raise field_error(
                f"{prefix}.name",
                _("Two messages are called %(name)s; give each its own name."),
                "duplicate",
                name=name,
            )
        names.add(name)
        if data.get("channel") not in Channel.values:
            raise field_error(
                f"{prefix}.channel",
                _("Choose the message's channel: %(choices)s."),
                "invalid_channel",
                choices=", ".join(Channel.values),
            )
        if data.get("segment") is not None and data.get("persona") is not None:
            raise field_error(
                f"{prefix}.persona",
                _("A message is for a segment or a persona (or everyone), not both."),
                "one_target",
            )
        message = Message(
            campaign=campaign,
            name=name,
            channel=data["channel"],
            subject=data.get("subject") or "",
            body_text=data.get("body_text") or "",
            body_html=data.get("body_html") or "",
            segment=data.get("segment"),
            persona=data.get("persona"),
            weight=data.get("weight") or 1,
        )
        try:
            message_validate(message=message)
            if not (message.body_text or message.body_html):
                raise field_error(
                    "body_text", _("Write the message's text."), "required"
                )
            message.full_clean(exclude=["campaign"], validate_unique=False)
        except ValidationError as exc:
            raise ValidationError(
                {f"{prefix}.{key}": errors for key, errors in exc.error_dict.items()}
            ) from None
        built.append(message)
    # A message that keeps its name keeps its row (and the links to its
    # preview); the others are replaced.
    existing = dict(campaign.messages.values_list("name", "pk"))
    for message in built:
        message.pk = existing.get(message.name)
    campaign.messages.exclude(name__in=names).delete()
    Message.objects.bulk_update(
        [message for message in built if message.pk], MESSAGE_COLUMNS
    )
    Message.objects.bulk_create([message for message in built if not message.pk])


def _messages(campaign: Campaign) -> list[dict]:
    return [
        {
            "name": m.name,
            "channel": m.channel,
            "subject": m.subject,
            "body_text": m.body_text,
            "body_html": m.body_html,
            "segment": m.segment,
            "persona": m.persona,
            "weight": m.weight,
        }
        for m in campaign.messages.select_related("segment", "persona")
    ]


def _clean(campaign: Campaign) -> None:
    campaign.channels = _channels_check(campaign.channels)
    if campaign.recurrence:
        recurrence_parse(campaign.recurrence)
    if not isinstance(campaign.costs, dict):
        raise field_error(
            "costs",
            _('Give costs per channel, for example {"sms": "0.07"}.'),
            "invalid",
        )
    _channels_check(list(campaign.costs), field="costs")
    for channel, cost in campaign.costs.items():
        try:
            amount = Decimal(str(cost))
            valid = amount.is_finite() and amount >= 0
        except InvalidOperation:
            valid = False
        if not valid:
            raise field_error(
                "costs",
                _('The cost of %(channel)s must be an amount such as "0.07".'),
                "invalid_cost",
                channel=channel,
            )
        campaign.costs[channel] = str(cost)
    campaign.full_clean(
        exclude=["include_segments", "include_personas", "exclude_segments"]
    )


# Services -------------------------------------------------------------------------


@transaction.atomic
def campaign_create(
    *,
    created_by: AbstractBaseUser | None,
    name: str,
    slug: str = "",
    kind: str = Kind.ONE_OFF,
    audience: dict | None = None,
    channels: list[str] | None = None,
    messages: list[dict] | None = None,
    holdout_percent: int = 10,
    send_at: datetime | None = None,
    recurrence: str = "",
    trigger: dict | None = None,
    priority: int = 0,
    frequency_cap: int | None = None,
    frequency_window_days: int | None = None,
    costs: dict | None = None,
    description: str = "",
    attribution_days: int = 7,
) -> Campaign:
    """Create a draft campaign with its audience and messages."""
    slug = slugify(slug or name)
    if not slug:
        raise field_error("slug", _("Give the campaign a name or slug."), "required")
    if Campaign.objects.filter(slug=slug).exists():
        raise field_error(
            "slug",
            _("A campaign with slug %(slug)s exists; choose another."),
            "slug_taken",
            slug=slug,
        )
    campaign = Campaign(
        name=name,
        slug=slug,
        description=description,
        kind=kind,
        channels=list(channels or []),
        holdout_percent=holdout_percent,
        send_at=send_at,
        recurrence=recurrence or "",
        priority=priority,
        frequency_cap=frequency_cap,
        frequency_window_days=frequency_window_days,
        costs=dict(costs or {}),
        attribution_days=attribution_days,
        created_by=created_by if created_by and created_by.is_authenticated else None,
    )
    _trigger_apply(campaign=campaign, trigger=trigger)
    _clean(campaign)
    campaign.save()
    _audience_set(campaign=campaign, audience=audience or {})
    _messages_set(campaign=campaign, messages=messages or [])
    return campaign


@transaction.atomic
def campaign_update(
    *, campaign: Campaign, changed_by: AbstractBaseUser | None, **changes: Any
) -> Campaign:
    """Change a campaign: a draft entirely, a scheduled one only in its safe
    fields (each change recorded with who and what)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise TypeError(f"campaign_update() got unknown fields {sorted(unknown)}")
    _locked(campaign)
    is_draft = campaign.status == Status.DRAFT
    if not is_draft:
        refused = sorted(set(changes) - SAFE_AFTER_SCHEDULING)
        if refused:
            raise field_error(
                refused[0],
                _(
                    "The campaign is %(status)s: only %(safe)s may change now. Cancel "
                    "it and create a new one to change %(name)s."
                ),
                "campaign_not_draft",
                status=campaign.get_status_display().lower(),
                safe=", ".join(sorted(SAFE_AFTER_SCHEDULING)),
                name=refused[0],
            )
    diff: dict[str, dict] = {}
    for name in PLAIN_FIELDS & set(changes):
        old, new = getattr(campaign, name), changes[name]
        if name == "recurrence":
            new = new or ""
        if old != new:
            diff[name] = {"old": old, "new": new}
            setattr(campaign, name, new)
    if "trigger" in changes:
        old = _trigger(campaign)
        _trigger_apply(campaign=campaign, trigger=changes["trigger"])
        if _trigger(campaign) != old:
            diff["trigger"] = {"old": old, "new": _trigger(campaign)}
    _clean(campaign)
    campaign.save()
    if "audience" in changes:
        old = _audience(campaign)
        _audience_set(campaign=campaign, audience=changes["audience"] or {})
        if _audience(campaign) != old:
            diff["audience"] = {"old": old, "new": _audience(campaign)}
    if "messages" in changes:
        old = _messages(campaign)
        _messages_set(campaign=campaign, messages=changes["messages"] or [])
        diff["messages"] = {"old": old, "new": _messages(campaign)}
    if diff and not is_draft:
        _change_record(
            campaign=campaign, user=changed_by, action="update", details=diff
        )
    return campaign


@transaction.atomic
def campaign_delete(*, campaign: Campaign) -> None:
    """Delete a draft; a campaign that was scheduled keeps its record."""
    campaign = _locked(campaign)
    if campaign.status != Status.DRAFT:
        raise field_error(
            "status",
            _(
                "Only a draft can be deleted; this campaign is %(status)s. Cancel it "
                "instead: its deliveries stay on record."
            ),
            "campaign_not_draft",
            status=campaign.get_status_display().lower(),
        )
    campaign.delete()


def _reachable_channels(campaign: Campaign) -> set[str]:
    """Channels planning may pick for someone in the audience."""
    reachable = set(campaign.channels)
    for segment in campaign.include_segments.all():
        reachable.update(segment.channel_preference or [])
    for persona in campaign.include_personas.all():
        reachable.update(preference_channels(persona.preferred_channels or []))
    return reachable


def campaign_schedule_check(*, campaign: Campaign, now: datetime) -> datetime | None:
    """Refuse a campaign that cannot run; its first run time if it can."""
    errors: dict[str, list[ValidationError]] = {}

    def refuse(field: str, message: str, code: str, **params: Any) -> None:
        errors.setdefault(field, []).append(
            ValidationError(message, code=code, params=params)
        )

    if not (campaign.include_segments.exists() or campaign.include_personas.exists()):
        refuse(
            "audience",
            _("Include at least one segment or persona: the audience is empty."),
            "audience_empty",
        )
    try:
        _channels_check(campaign.channels)
    except ValidationError as exc:
        errors.update(exc.error_dict)
    messages = list(campaign.messages.all())
    if not messages:
        refuse("messages", _("Write at least one message."), "messages_empty")
    reachable = _reachable_channels(campaign)
    for index, message in enumerate(messages):
        if message.channel not in reachable:
            refuse(
                f"messages[{index}].channel",
                _(
                    "No customer can get message %(name)s: %(channel)s is neither in "
                    "the campaign's channels nor preferred by an included segment or "
                    "persona. Add %(channel)s to the channels."
                ),
                "channel_unreachable",
                name=message.name,
                channel=message.channel,
            )
    next_run = None
    if campaign.kind == Kind.ONE_OFF:
        if campaign.send_at is None or campaign.send_at <= now:
            next_run = now
        else:
            next_run = campaign.send_at
    elif campaign.kind == Kind.RECURRING:
        try:
            next_run = recurrence_validate(campaign.recurrence, after=now)
        except ValidationError as exc:
            errors.update(exc.error_dict)
    elif campaign.kind == Kind.TRIGGERED and campaign.trigger_segment is None:
        refuse(
            "trigger.segment",
            _("Choose the segment whose new members the campaign greets."),
            "trigger_required",
        )
    if errors:
        raise ValidationError(errors)
    return next_run


@transaction.atomic
def campaign_schedule(*, campaign: Campaign, user: AbstractBaseUser | None) -> Campaign:
    """Schedule a draft (a one-off or recurring campaign) or start it (a
    triggered one). Scheduling it again is a no-op."""
    locked = _locked(campaign)
    if locked.status in RUNNING:
        return campaign
    if locked.status == Status.PAUSED:
        raise field_error(
            "status",
            _("The campaign is paused; resume it instead of scheduling it again."),
            "campaign_paused",
        )
    if locked.status != Status.DRAFT:
        raise field_error(
            "status",
            _("Only a draft can be scheduled; this campaign is %(status)s."),
            "campaign_not_draft",
            status=locked.get_status_display().lower(),
        )
    now = timezone.now()
    next_run = campaign_schedule_check(campaign=campaign, now=now)
    campaign.status = (
        Status.ACTIVE if campaign.kind == Kind.TRIGGERED else (Status.SCHEDULED)
    )
    campaign.next_run_at = next_run
    update = ["status", "next_run_at", "updated_at"]
    if campaign.kind == Kind.TRIGGERED:
        # Greets those who enter from now on, not everyone who ever entered.
        campaign.trigger_read_from = now
        update.append("trigger_read_from")
    campaign.save(update_fields=update)
    _change_record(
        campaign=campaign,
        user=user,
        action="schedule",
        details={"status": campaign.status, "next_run_at": next_run},
    )
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, user: AbstractBaseUser | None) -> Campaign:
    """Stop planning and sending until resumed; pausing again is a no-op."""
    locked = _locked(campaign)
    if locked.status == Status.PAUSED:
        return campaign
    if locked.status not in RUNNING:
        raise field_error(
            "status",
            _(
                "Only a scheduled, sending or active campaign can be paused; this one "
                "is %(status)s."
            ),
            "campaign_not_running",
            status=locked.get_status_display().lower(),
        )
    _change_record(
        campaign=campaign, user=user, action="pause", details={"from": locked.status}
    )
    campaign.status = Status.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    return campaign


def _status_before_pause(campaign: Campaign) -> str:
    pause = campaign.changes.filter(action="pause").order_by("-id").first()
    status = (pause.details or {}).get("from") if pause else None
    if status in RUNNING:
        return status
    return Status.ACTIVE if campaign.kind == Kind.TRIGGERED else Status.SCHEDULED


@transaction.atomic
def campaign_resume(*, campaign: Campaign, user: AbstractBaseUser | None) -> Campaign:
    """Go on from where the campaign was paused, in the status it had."""
    locked = _locked(campaign)
    if locked.status in RUNNING:
        return campaign
    if locked.status != Status.PAUSED:
        raise field_error(
            "status",
            _("Only a paused campaign can be resumed; this one is %(status)s."),
            "campaign_not_paused",
            status=locked.get_status_display().lower(),
        )
    campaign.status = _status_before_pause(campaign)
    update = ["status", "updated_at"]
    if campaign.kind == Kind.RECURRING and campaign.next_run_at is not None:
        # Occurrences missed while paused are not made up in a burst: the next
        # one after now is the next run.
        now = timezone.now()
        if campaign.next_run_at < now:
            campaign.next_run_at = next_occurrence(campaign.recurrence, now)
            update.append("next_run_at")
    campaign.save(update_fields=update)
    _change_record(
        campaign=campaign, user=user, action="resume", details={"to": campaign.status}
    )
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, user: AbstractBaseUser | None) -> Campaign:
    """Stop the campaign for good; what was not sent yet is skipped."""
    locked = _locked(campaign)
    if locked.status == Status.CANCELLED:
        return campaign
    if locked.status == Status.SENT:
        raise field_error(
            "status",
            _("The campaign was sent in full; there is nothing left to cancel."),
            "campaign_sent",
        )
    previous = locked.status
    campaign.status = Status.CANCELLED
    campaign.next_run_at = None
    campaign.save(update_fields=["status", "next_run_at", "updated_at"])
    # One UPDATE over the campaign's rows that have not gone yet; rows a worker
    # holds (sending) finish as they are, since the message may already be out.
    skipped = Delivery.objects.filter(
        campaign=campaign,
        status__in=[Delivery.Status.PLANNED, Delivery.Status.DEFERRED],
    ).update(status=Delivery.Status.SKIPPED, reason="campaign cancelled")
    CampaignRun.objects.filter(
        campaign=campaign, status=CampaignRun.Status.PLANNED
    ).update(status=CampaignRun.Status.CANCELLED, finished_at=timezone.now())
    _change_record(
        campaign=campaign,
        user=user,
        action="cancel",
        details={"from": previous, "skipped": skipped},
    )
    return campaign
