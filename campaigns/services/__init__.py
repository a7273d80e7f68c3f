"""Every write of the campaigns app; `campaigns.services.campaigns` holds the
campaign lifecycle (create, change, schedule, pause, resume, cancel)."""
