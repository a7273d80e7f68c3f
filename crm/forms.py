"""Form fields the admin pages of several apps share."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _


class ChannelListField(forms.CharField):
    """An ordered list of channel names typed as "email, sms".

    Campaigns try the channels in the order given, so the order is kept and a name
    given twice counts once, where it first appears.
    """

    def __init__(self, *, choices: tuple[str, ...], **kwargs: Any):
        self.allowed = choices
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text", _("In order, separated by commas: %s.") % ", ".join(choices)
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            value = ", ".join(value)
        text = super().to_python(value) or ""
        items = [item.strip().lower() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in self.allowed]
        if unknown:
            raise forms.ValidationError(
                _("Unknown channel %(names)s; use %(allowed)s."),
                params={
                    "names": ", ".join(unknown),
                    "allowed": ", ".join(self.allowed),
                },
                code="unknown_channel",
            )
        return list(dict.fromkeys(items))

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(initial or []) != self.to_python(data)
        except forms.ValidationError:
            return True
