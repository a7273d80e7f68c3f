"""How the campaign pages write the change log's details."""

from typing import Any


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value) or "-"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_text(item)}" for key, item in value.items()) or "-"
    return str(value)


def change_summary(details: dict[str, Any]) -> list[str]:
    """One line per changed thing: "name: Spring → Spring sale"."""
    lines = []
    for name, value in (details or {}).items():
        if isinstance(value, dict) and set(value) == {"old", "new"}:
            lines.append(f"{name}: {_text(value['old'])} → {_text(value['new'])}")
        else:
            lines.append(f"{name}: {_text(value)}")
    return lines
