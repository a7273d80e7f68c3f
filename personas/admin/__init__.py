"""The Django admin for personas.

Personas are written through personas.services; assignments and their history,
which only the segment engine writes, are read-only.
"""

from . import personas, records

__all__ = ["personas", "records"]
