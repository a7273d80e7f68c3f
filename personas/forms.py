"""The persona admin's form: traits, and a rule written as a text query or JSON."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.forms import ChannelListField
from crm.models import Customer, SalesChannel
from segments.forms import RuleJSONField, rule_text

from .models import Persona
from .services import persona_rules_from_input

CONTACT_CHANNELS = tuple(c for c in Customer.PreferredChannel.values if c)


class PersonaForm(forms.ModelForm):
    query = forms.CharField(
        label=_("Matching rule"),
        required=False,
        strip=True,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "cols": 90,
                "class": "vLargeTextField",
                "spellcheck": "false",
            }
        ),
        help_text=_(
            "The segment rule language, e.g. age between 18 and 25 and "
            'purchase_channel = "online". Leave empty to give the rule as JSON.'
        ),
    )
    rules = RuleJSONField(
        label=_("Rule as JSON"),
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 3, "cols": 90, "class": "vLargeTextField"}
        ),
    )
    photo_url = forms.URLField(
        label=_("Photo URL"),
        required=False,
        assume_scheme="https",
        help_text=_("Optional; replaces the avatar."),
    )
    buying_channels = ChannelListField(
        label=_("Where they buy"), choices=tuple(SalesChannel.values)
    )
    preferred_channels = ChannelListField(
        label=_("Preferred channels"), choices=CONTACT_CHANNELS
    )
    sources = forms.MultipleChoiceField(
        label=_("Sources"),
        choices=Persona.Source.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Persona
        fields = [
            "name",
            "slug",
            "title",
            "avatar",
            "photo_url",
            "status",
            "priority",
            "age_min",
            "age_max",
            "gender",
            "job_title",
            "family_situation",
            "income_band",
            "location",
            "web_savviness",
            "research",
            "buying_channels",
            "purchases_per_month",
            "typical_basket",
            "brand_loyalty",
            "goals",
            "pain_points",
            "values",
            "buying_role",
            "social_influence",
            "service_needs",
            "preferred_channels",
            "message_tone",
            "notes",
            "sources",
            "source_notes",
        ]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            self.fields["slug"].required = False
        if self.instance.pk:
            text = rule_text(self.instance.rules)
            self.initial["query"] = text or ""
            self.initial["rules"] = None if text is not None else self.instance.rules
        self.checked_rules: dict | None = None

    def clean_rules(self) -> Any:
        rules = self.cleaned_data.get("rules")
        return None if rules in (None, "") else rules

    def clean(self) -> dict:
        cleaned = super().clean()
        query = cleaned.get("query") or None
        rules = cleaned.get("rules")
        if "rules" in self.errors:
            return cleaned
        if query is not None and rules is not None:
            self.add_error("rules", _("Give the rule as text or as JSON, not both."))
            return cleaned
        if query is None and rules is None:
            self.add_error("query", _("Write the rule, as text or as JSON."))
            return cleaned
        try:
            self.checked_rules = persona_rules_from_input(rules=rules, query=query)
        except forms.ValidationError as error:
            for field, errors in error.error_dict.items():
                self.add_error(field if field in self.fields else "query", errors)
        return cleaned

    def service_rule(self) -> dict[str, Any]:
        if self.cleaned_data.get("query"):
            return {"query": self.cleaned_data["query"]}
        return {"rules": self.cleaned_data["rules"]}
