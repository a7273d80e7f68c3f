from django.contrib.admin.apps import AdminConfig


class LoyalistAdminConfig(AdminConfig):
    """The admin with Loyalist's site: its home page is the dashboard."""

    default_site = "crm.admin_site.LoyalistAdminSite"
