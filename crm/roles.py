"""Staff roles as Django groups, with the model permissions each role needs."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

CLERKS = "Clerks"
MARKETERS = "Marketers"

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
        },
    },
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
        group.permissions.add(*permissions)
