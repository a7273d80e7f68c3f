from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from segments import hooks as segment_hooks

        from .receivers import segment_entries_greet

        # Triggered campaigns greet new members of their segment within seconds.
        segment_hooks.segment_entries_recorded.register(segment_entries_greet)
