"""The segment admin's form: a rule written as a text query or as JSON."""

import json
from typing import Any

from django import forms
from django.utils.text import slugify
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.forms import ChannelListField
from crm.models import Channel

from .compiler import rule_check
from .fields import RuleError
from .models import Segment
from .query import QuerySyntaxError, format_rule, parse


def rule_at(rule: Any, path: str) -> Any:
    """The part of a rule tree a RuleError path ("all[1].not.field") points at."""
    node = rule
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return None
            node = node[index]
        elif isinstance(node, dict) and part in node:
            if part in ("field", "op", "value"):
                return node
            node = node[part]
        else:
            return None
    return node


def rule_text(rule: Any) -> str | None:
    try:
        return format_rule(rule)
    except ValueError:
        return None


def check_rule(
    *, query: str | None, rules: Any, own_slug: str | None
) -> tuple[dict | None, str, str | None]:
    """Parse and check a rule the way the services will.

    Returns (checked rule or None, error message, caret). The message says where the
    problem is: the column of a syntax error, or the path of an invalid condition
    and that condition written as a query.
    """
    if query is not None:
        try:
            rules = parse(query)
        except QuerySyntaxError as exc:
            return None, str(exc), exc.caret()
    segment_rules = dict(Segment.objects.values_list("slug", "rules"))
    try:
        return (
            rule_check(
                rules,
                segment_rules=segment_rules,
                own_slug=own_slug,
                typed=query is not None,
            ),
            "",
            None,
        )
    except RuleError as exc:
        message = str(exc)
        culprit = rule_text(rule_at(rules, exc.path)) if exc.path else None
        if culprit and query is not None:
            message = gettext("%(message)s (in the condition %(condition)s)") % {
                "message": message,
                "condition": culprit,
            }
        return None, message, None


class RuleJSONField(forms.JSONField):
    """JSON in a textarea, indented, and empty (not "null") when there is none."""

    def prepare_value(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, indent=2)
        return super().prepare_value(value)


class SegmentForm(forms.ModelForm):
    """Name, kind and a rule; exactly one of `query` (text) and `rules` (JSON)."""

    query = forms.CharField(
        label=_("rule"),
        required=False,
        strip=True,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "cols": 90,
                "class": "vLargeTextField segment-query",
                "spellcheck": "false",
            }
        ),
        help_text=_(
            "For example: orders >= 2 and last_purchase within 90 days and city in "
            '("Utrecht", "Delft"). Leave empty to give the rule as JSON below.'
        ),
    )
    rules = RuleJSONField(
        label=_("rule as JSON"),
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "cols": 90, "class": "vLargeTextField segment-rules"}
        ),
        help_text=_(
            'Used only when the rule above is empty, e.g. {"all": [{"field": '
            '"orders", "op": "gte", "value": 2}]}.'
        ),
    )

    channel_preference = ChannelListField(
        label=_("channel preference"),
        choices=tuple(Channel.values),
        help_text=_(
            "Channels to reach this segment's members on, in order, separated by "
            "commas (%s). Campaigns use the first that reaches a customer whose own "
            "preference and persona name none."
        )
        % ", ".join(Channel.values),
    )

    class Meta:
        model = Segment
        fields = [
            "name",
            "slug",
            "description",
            "kind",
            "is_active",
            "channel_preference",
        ]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            # The service derives the slug from the name when it is left empty.
            self.fields["slug"].required = False
        if self.instance.pk:
            # The stored rule is shown once: as a query, or as JSON when it has no
            # query spelling.
            text = rule_text(self.instance.rules)
            self.initial["query"] = text or ""
            self.initial["rules"] = None if text is not None else self.instance.rules
        self.checked_rules: dict | None = None
        self.rule_source: str | None = None
        self.syntax_caret: str | None = None

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
            self.add_error(
                "rules",
                _("Give the rule as text or as JSON, not both: empty one of them."),
            )
            return cleaned
        if query is None and rules is None:
            self.add_error("query", _("Write the rule, as text or as JSON."))
            return cleaned
        own_slug = (
            self.instance.slug
            if self.instance.pk
            else slugify(cleaned.get("slug") or cleaned.get("name") or "")
        )
        field = "query" if query is not None else "rules"
        checked, message, caret = check_rule(
            query=query, rules=rules, own_slug=own_slug or None
        )
        if checked is None:
            self.syntax_caret = caret
            self.add_error(field, message)
            return cleaned
        self.checked_rules = checked
        self.rule_source = field
        return cleaned

    def service_rule(self) -> dict[str, Any]:
        """The rule argument for segment_create/segment_update, as the user gave it."""
        if self.rule_source == "query":
            return {"query": self.cleaned_data["query"]}
        return {"rules": self.cleaned_data["rules"]}
