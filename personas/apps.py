from django.apps import AppConfig


class PersonasConfig(AppConfig):
    name = "personas"

    def ready(self) -> None:
        from crm import hooks
        from segments import hooks as segment_hooks

        from .admin.panels import customer_persona_panel
        from .api import customers as api_customers
        from .dashboard import dashboard_personas_panel
        from .demo import demo_personas_ensure
        from .selectors import (
            customer_export_sections,
            persona_rules_active,
            persona_segment_references,
        )
        from .services.assignments import (
            assignments_apply_run,
            assignments_refresh,
            personas_after_recompute,
        )

        hooks.demo_seeded.register(demo_personas_ensure)
        hooks.dashboard_panels.register(dashboard_personas_panel)
        # The customer's page shows the persona and which rule gave it.
        hooks.customer_admin_panels.register(customer_persona_panel)
        hooks.customer_data_export_sections.register(customer_export_sections)
        # The customer resource of the API shows the persona and filters by it.
        hooks.customer_api_fields.register(api_customers.customer_api_fields)
        hooks.customer_api_queryset.register(api_customers.customer_api_queryset)
        hooks.customer_api_filters.register(api_customers.customer_api_filters)
        # The segment engine evaluates the active personas' rules in its passes
        # and hands back each customer's persona.
        segment_hooks.persona_rules.register(persona_rules_active)
        segment_hooks.batch_personas_evaluated.register(assignments_refresh)
        segment_hooks.run_personas_evaluated.register(assignments_apply_run)
        segment_hooks.recompute_finished.register(personas_after_recompute)
        segment_hooks.segment_references_found.register(persona_segment_references)
