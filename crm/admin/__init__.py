"""The Django admin for the CRM core.

The admin reads freely but writes only through crm.services: add and change forms
hand their cleaned data to a service, admin actions call services, and the rows
only services write (consents, loyalty transactions, receipts, contacts, the
statistics and webhook deliveries) are read-only here. Stores, staff, tags and the
catalogue are reference data without a workflow, edited directly.
"""

from . import catalogue, customers, exports, loyalty, receipts, stores, webhooks

__all__ = [
    "catalogue",
    "customers",
    "exports",
    "loyalty",
    "receipts",
    "stores",
    "webhooks",
]
