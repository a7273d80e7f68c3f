"""The campaign admin's forms: the campaign in a marketer's words, and its messages."""

from typing import Any

from django import forms
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from crm.forms import ChannelListField
from crm.models import Channel

from .models import Campaign, Message
from .personalisation import message_validate

CHANNELS = tuple(Channel.values)


class CampaignForm(forms.ModelForm):
    channels = ChannelListField(
        label=_("Channels to try, in order"),
        choices=CHANNELS,
        help_text=_(
            "Separated by commas (%s). Used for customers whose own preference, "
            "persona and segments name no channel that reaches them."
        )
        % ", ".join(CHANNELS),
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "slug",
            "description",
            "kind",
            "include_segments",
            "include_personas",
            "exclude_segments",
            "holdout_percent",
            "channels",
            "priority",
            "frequency_cap",
            "frequency_window_days",
            "send_at",
            "recurrence",
            "trigger_segment",
            "trigger_delay_minutes",
            "trigger_reentry_days",
            "costs",
            "attribution_days",
        ]
        labels = {
            "include_segments": _("Send to the members of"),
            "include_personas": _("and to the customers of the personas"),
            "exclude_segments": _("but never to the members of"),
        }
        help_texts = {
            "send_at": _("One-off campaigns: when to send."),
            "recurrence": _(
                "Recurring campaigns: an RFC 5545 rule in the shop's time zone, "
                'for example "DTSTART:20270104T090000\\nRRULE:FREQ=WEEKLY;BYDAY=MO" '
                "for every Monday at 9:00."
            ),
            "trigger_segment": _(
                "Triggered campaigns: a customer entering this segment receives the "
                "message."
            ),
            "costs": _(
                "What one message costs per channel, for the return on investment: "
                '{"sms": "0.07", "post": "0.85"}.'
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            self.fields["slug"].required = False

    def clean_slug(self) -> str:
        # Left empty, the slug follows the name, as for segments and personas.
        return self.cleaned_data.get("slug") or slugify(
            self.data.get(self.add_prefix("name"), "")
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("kind") == Campaign.Kind.TRIGGERED:
            if "trigger_segment" in self.fields and not cleaned.get("trigger_segment"):
                self.add_error(
                    "trigger_segment",
                    _("Choose the segment whose new members receive the message."),
                )
            return cleaned
        include = [
            cleaned.get("include_segments"),
            cleaned.get("include_personas"),
        ]
        if "include_segments" in self.fields and not any(
            value is not None and value.exists() for value in include
        ):
            self.add_error(
                "include_segments",
                _("Choose at least one segment or persona to send to."),
            )
        return cleaned


class MessageForm(forms.ModelForm):
    class Meta:
        model = Message
        fields = [
            "name",
            "channel",
            "segment",
            "persona",
            "weight",
            "subject",
            "body_text",
            "body_html",
        ]
        widgets = {
            "body_text": forms.Textarea(attrs={"rows": 5, "cols": 80}),
            "body_html": forms.Textarea(attrs={"rows": 5, "cols": 80}),
        }
        help_texts = {
            "subject": _("Email only."),
            "body_html": _("Email only; the text is sent alongside it."),
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Checked here so that the error sits beside the field; sending renders the
        # same templates and must never fail on them.
        try:
            message_validate(
                message=Message(
                    **{
                        name: cleaned.get(name) or ""
                        for name in ("subject", "body_text", "body_html")
                    }
                )
            )
        except forms.ValidationError as error:
            self.add_error(None, error)
        if cleaned.get("segment") and cleaned.get("persona"):
            self.add_error(
                "persona",
                _("A message is for one segment or one persona (or everyone)."),
            )
        channel = cleaned.get("channel")
        # A template refused above has left cleaned_data: it is not missing.
        refused = set(self.errors)
        if (
            channel == Channel.EMAIL
            and not cleaned.get("subject")
            and "subject" not in refused
        ):
            self.add_error("subject", _("An email needs a subject."))
        if (
            channel
            and channel != Channel.SOCIAL_ADS
            and not (cleaned.get("body_text") or cleaned.get("body_html"))
            and not refused & {"body_text", "body_html"}
        ):
            self.add_error("body_text", _("Write the message."))
        return cleaned
