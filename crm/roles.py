"""Staff and integration roles as Django groups.

Staff roles carry the model permissions the admin and the desk need. The API roles
decide what a token may do (see crm.api.permissions): a token belongs to a user,
and the user's groups are its roles.
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

CLERKS = "Clerks"
MARKETERS = "Marketers"
# Integrations: read everything, write nothing.
API_READ_ONLY = "API read-only"
# Tills and web shops: record sales and contacts for the store(s) of their user's
# StaffMember row, and read the customers those stores serve.
API_TILLS = "API tills"
# Everything the API offers, like a superuser.
API_ADMINS = "API admins"

# app_label -> model names -> actions. Clerks work at the desk, not in the admin,
# so they get only what the desk needs.
ROLE_PERMISSIONS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    CLERKS: {
        "crm": {
            "customer": ("view", "add"),
            "receipt": ("view", "add"),
            "loyaltycard": ("view",),
            "product": ("view",),
        },
    },
    MARKETERS: {
        "crm": {
            "customer": ("view",),
            "consent": ("view",),
            "contact": ("view",),
            "customerstats": ("view",),
            "loyaltycard": ("view",),
            "receipt": ("view",),
            "product": ("view",),
            "category": ("view",),
            "store": ("view",),
            "tag": ("view", "add", "change"),
            # Adding an export to the log is exporting members (crm.exports).
            "memberexport": ("view", "add"),
        },
        # Marketers build segments and personas (the README's promise); they read
        # what the engine derived but never delete customers, webhooks or users.
        "segments": {
            "segment": ("view", "add", "change"),
            "segmentevent": ("view",),
            "customersegmentstate": ("view",),
            "rfmthresholds": ("view",),
            "segmentsizesnapshot": ("view",),
        },
        "personas": {
            "persona": ("view", "add", "change"),
            "personaassignment": ("view",),
            "personachange": ("view",),
            "personafigures": ("view",),
        },
        # Marketers run campaigns end to end; deleting one is for drafts only
        # (campaigns.services), and what was sent is read, never edited.
        "campaigns": {
            "campaign": ("view", "add", "change", "delete"),
            "message": ("view", "add", "change", "delete"),
            "campaignrun": ("view",),
            "delivery": ("view",),
            "campaignchange": ("view",),
        },
    },
    # Integration users never sign in to the admin; their permissions mirror what
    # the API lets them do, so the admin's user page shows the role truthfully.
    API_READ_ONLY: {
        "crm": dict.fromkeys(
            (
                "store",
                "category",
                "product",
                "customer",
                "consent",
                "contact",
                "customerstats",
                "loyaltycard",
                "loyaltytransaction",
                "receipt",
            ),
            ("view",),
        ),
        "segments": {"segment": ("view",)},
        "campaigns": dict.fromkeys(("campaign", "message", "delivery"), ("view",)),
    },
    API_TILLS: {
        "crm": {
            "store": ("view",),
            "category": ("view",),
            "product": ("view",),
            "customer": ("view", "add", "change"),
            "consent": ("view", "add"),
            "contact": ("view", "add"),
            "loyaltycard": ("view",),
            "receipt": ("view", "add", "change"),
        },
    },
    API_ADMINS: {"crm": {"memberexport": ("view", "add")}},
}


@transaction.atomic
def roles_sync(**_kwargs) -> None:
    """Create the role groups and give them exactly their permissions."""
    for group_name, apps in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=group_name)
        codenames = [
            (app_label, f"{action}_{model}")
            for app_label, models in apps.items()
            for model, actions in models.items()
            for action in actions
        ]
        permissions = [
            permission
            for permission in Permission.objects.filter(
                codename__in=[codename for _app, codename in codenames]
            ).select_related("content_type")
            if (permission.content_type.app_label, permission.codename) in codenames
        ]
        group.permissions.set(permissions)
