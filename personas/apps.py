from django.apps import AppConfig


class PersonasConfig(AppConfig):
    name = "personas"

    def ready(self) -> None:
        from crm import hooks

        from .demo import demo_personas_ensure

        hooks.demo_seeded.register(demo_personas_ensure)
