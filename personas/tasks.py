"""Thin Celery tasks around the persona services; ids and numbers only."""

from celery import shared_task


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def persona_figures_task() -> int:
    """Recompute the matched customers' figures of every persona."""
    from .services import persona_figures_refresh

    return len(persona_figures_refresh())


@shared_task(acks_late=True, soft_time_limit=300, time_limit=330)
def personas_suggest_task(k: int | None = None) -> list[int]:
    """Cluster the customers and store the clusters as draft personas."""
    from .services.suggestions import personas_suggest

    return [persona.pk for persona in personas_suggest(k=k).drafts]
