"""Every write to the CRM goes through these services."""

from .contacts import (
    ContactRef,
    contact_announce,
    contact_build,
    contact_record,
    contacts_record_many,
)
from .customers import consent_record, customer_create, customer_update
from .erasure import customer_erase
from .exports import member_export_finish, member_export_start
from .imports import ImportReport, receipts_import
from .loyalty import (
    loyalty_card_issue,
    loyalty_card_link,
    loyalty_card_replace,
    loyalty_card_status_set,
    points_adjust,
    points_earn,
    points_redeem,
)
from .push_tokens import push_token_register, push_token_revoke
from .receipt_email import receipt_email_request, receipt_email_send
from .receipts import (
    LineInput,
    receipt_record,
    receipt_record_in_transaction,
    receipt_void,
)
from .stats import customer_stats_rebuild, customer_stats_refresh

__all__ = [
    "ContactRef",
    "ImportReport",
    "LineInput",
    "consent_record",
    "contact_announce",
    "contact_build",
    "contact_record",
    "contacts_record_many",
    "customer_create",
    "customer_erase",
    "customer_stats_rebuild",
    "customer_stats_refresh",
    "customer_update",
    "loyalty_card_issue",
    "loyalty_card_link",
    "loyalty_card_replace",
    "loyalty_card_status_set",
    "member_export_finish",
    "member_export_start",
    "points_adjust",
    "points_earn",
    "points_redeem",
    "push_token_register",
    "push_token_revoke",
    "receipt_email_request",
    "receipt_email_send",
    "receipt_record",
    "receipt_record_in_transaction",
    "receipt_void",
    "receipts_import",
]
