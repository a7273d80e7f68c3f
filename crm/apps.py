from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("CRM")

    def ready(self) -> None:
        from .roles import roles_sync

        # Permissions exist only after migrate has run, so roles are synced then.
        post_migrate.connect(roles_sync, sender=self, dispatch_uid="crm_roles_sync")
