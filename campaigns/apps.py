from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from crm import hooks
        from segments import fields as segment_fields
        from segments import hooks as segment_hooks

        from .demo import demo_campaigns_ensure
        from .receivers import deliveries_scrub, segment_entries_greet
        from .rule_fields import ARGUMENT, CAMPAIGN_FIELDS, CAMPAIGN_REFERENCE

        # Segment rules may name a campaign: "opened campaign X within N days".
        segment_fields.reference_register(ARGUMENT, CAMPAIGN_REFERENCE)
        for spec in CAMPAIGN_FIELDS:
            segment_fields.register(spec)

        # Triggered campaigns greet new members of their segment within seconds.
        segment_hooks.segment_entries_recorded.register(segment_entries_greet)
        # Erasure reaches what campaigns keep about the person.
        hooks.customer_erased.register(deliveries_scrub)
        # `seed_demo` ends with draft demo campaigns on the demo's segments.
        hooks.demo_seeded.register(demo_campaigns_ensure)
