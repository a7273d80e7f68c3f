from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self) -> None:
        from .db import sqlite_functions

        connection_created.connect(sqlite_functions, dispatch_uid="segments.sqlite")
