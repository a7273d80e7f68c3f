from django.apps import AppConfig


class PersonasConfig(AppConfig):
    name = "personas"

    def ready(self) -> None:
        from crm import hooks

        from .dashboard import dashboard_personas_panel
        from .demo import demo_personas_ensure
        from .selectors import customer_export_sections

        hooks.demo_seeded.register(demo_personas_ensure)
        hooks.dashboard_panels.register(dashboard_personas_panel)
        hooks.customer_data_export_sections.register(customer_export_sections)
