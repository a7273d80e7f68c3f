"""The Django admin for campaigns.

Marketers build a campaign and its messages here and move it through its life with
the buttons on its page, which call campaigns.services. Runs, deliveries and the
change log, which only the engine writes, are read-only.
"""

from . import campaigns, deliveries

__all__ = ["campaigns", "deliveries"]
