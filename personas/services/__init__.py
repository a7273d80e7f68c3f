"""Every write to personas goes through these services."""

from .assignments import assignments_apply_run, assignments_refresh
from .figures import persona_figures_refresh
from .personas import (
    persona_create,
    persona_delete,
    persona_rules_from_input,
    persona_update,
)

__all__ = [
    "assignments_apply_run",
    "assignments_refresh",
    "persona_create",
    "persona_delete",
    "persona_figures_refresh",
    "persona_rules_from_input",
    "persona_update",
]
