"""Demo staff accounts with well-known passwords, one per role and a clerk per store."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction

from crm.models import StaffMember, Store
from crm.roles import CLERKS, MARKETERS, roles_sync

ADMIN_PASSWORD = "loyalist-admin"  # noqa: S105
CLERK_PASSWORD = "loyalist-clerk"  # noqa: S105
MARKETER_PASSWORD = "loyalist-marketer"  # noqa: S105


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    # False when the account existed already and kept its own password.
    created: bool


@transaction.atomic
def demo_users_ensure() -> list[DemoLogin]:
    """Create the demo accounts that are missing: `admin`, `marketer` and a
    `clerk-<store code>` for every store.

    Existing accounts keep their password, so that a password changed after the
    first demo run survives `make run`.
    """
    roles_sync()
    hashes: dict[str, str] = {}
    logins = []

    def ensure(username: str, password: str, role: str, **flags) -> object:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults=flags
        )
        if created:
            # Hashing is deliberately slow; accounts that share a password share it.
            if password not in hashes:
                hashes[password] = make_password(password)
            user.password = hashes[password]
            user.save(update_fields=["password"])
        logins.append(DemoLogin(username, password, role, created))
        return user

    ensure(
        "admin",
        ADMIN_PASSWORD,
        "superuser",
        is_staff=True,
        is_superuser=True,
        email="admin@loyalist.example",
    )
    marketer = ensure(
        "marketer",
        MARKETER_PASSWORD,
        MARKETERS,
        is_staff=True,
        email="marketer@loyalist.example",
    )
    marketer.groups.add(Group.objects.get(name=MARKETERS))
    clerks = Group.objects.get(name=CLERKS)
    for store in Store.objects.order_by("code"):
        clerk = ensure(
            f"clerk-{store.code}",
            CLERK_PASSWORD,
            f"{CLERKS}, {store.name}",
            email=f"clerk-{store.code}@loyalist.example",
        )
        clerk.groups.add(clerks)
        StaffMember.objects.get_or_create(user=clerk, defaults={"store": store})
    return logins
