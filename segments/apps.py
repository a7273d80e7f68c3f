from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self) -> None:
        from crm import hooks

        from .db import sqlite_functions
        from .services.engine import customers_mark_dirty
        from .services.rfm import rfm_thresholds_after_stats

        connection_created.connect(sqlite_functions, dispatch_uid="segments.sqlite")
        # Every recorded contact may move its customer between segments.
        hooks.contacts_recorded.register(customers_mark_dirty)
        # RFM quintiles are of the whole base's statistics: recomputed with them.
        hooks.stats_rebuilt.register(rfm_thresholds_after_stats)
