from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self) -> None:
        from crm import hooks

        from .admin.panels import customer_list_filters, customer_segments_panel
        from .api import customers as api_customers
        from .dashboard import dashboard_segments_panel
        from .selectors import customer_export_sections
        from .services.engine import customers_mark_dirty
        from .services.rfm import rfm_thresholds_after_stats
        from .webhooks import segment_slugs

        # Every recorded contact may move its customer between segments.
        hooks.contacts_recorded.register(customers_mark_dirty)
        hooks.customer_admin_panels.register(customer_segments_panel)
        hooks.dashboard_panels.register(dashboard_segments_panel)
        hooks.webhook_segment_slugs.register(segment_slugs)
        hooks.customer_admin_list_filters.register(customer_list_filters)
        hooks.customer_data_export_sections.register(customer_export_sections)
        # RFM quintiles are of the whole base's statistics: recomputed with them.
        hooks.stats_rebuilt.register(rfm_thresholds_after_stats)
        # The customer resource of the API shows segments and filters by them.
        hooks.customer_api_fields.register(api_customers.customer_api_fields)
        hooks.customer_api_queryset.register(api_customers.customer_api_queryset)
        hooks.customer_api_filters.register(api_customers.customer_api_filters)
