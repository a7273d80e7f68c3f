from django.apps import AppConfig


class PersonasConfig(AppConfig):
    name = "personas"

    def ready(self) -> None:
        from crm import hooks

        from .demo import demo_personas_ensure
        from .selectors import customer_export_sections

        hooks.demo_seeded.register(demo_personas_ensure)
        hooks.customer_data_export_sections.register(customer_export_sections)
