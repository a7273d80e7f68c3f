"""Persona assignments, written by the segment engine on each of its paths.

The segment engine evaluates the persona of every customer it evaluates and hands
it over through the hooks of `segments.hooks`; these functions turn those results into
`PersonaAssignment` rows and `PersonaChange` history, for a batch (incremental and
time paths) or for a whole-base run (set-based SQL over the run's rows).
"""

from datetime import datetime

from django.db import connection, transaction

from segments.selectors import run_personas

from ..models import Persona, PersonaAssignment, PersonaChange
from ..webhooks import persona_changes_emit


def assignments_refresh(
    *,
    wanted: dict[int, int | None],
    now: datetime,
    cause: str,
    contacts: dict[int, int | None] | None = None,
) -> int:
    """Store the persona each customer of a batch should have; returns the changes.

    Runs inside the engine's batch transaction, with the customers' state rows
    locked, so no concurrent batch writes the same customers.
    """
    contacts = contacts or {}
    current = dict(
        PersonaAssignment.objects.filter(customer_id__in=list(wanted)).values_list(
            "customer_id", "persona_id"
        )
    )
    changed = {
        customer_id: persona_id
        for customer_id, persona_id in wanted.items()
        if current.get(customer_id) != persona_id
    }
    if not changed:
        return 0
    PersonaAssignment.objects.filter(customer_id__in=list(changed)).delete()
    PersonaAssignment.objects.bulk_create(
        [
            PersonaAssignment(
                customer_id=customer_id,
                persona_id=persona_id,
                assigned_at=now,
                contact_id=contacts.get(customer_id),
            )
            for customer_id, persona_id in sorted(changed.items())
            if persona_id is not None
        ]
    )
    changes = PersonaChange.objects.bulk_create(
        [
            PersonaChange(
                customer_id=customer_id,
                from_persona_id=current.get(customer_id),
                to_persona_id=persona_id,
                occurred_at=now,
                cause=cause,
                contact_id=contacts.get(customer_id),
            )
            for customer_id, persona_id in sorted(changed.items())
        ]
    )
    persona_changes_emit(changes=changes)
    return len(changed)


def assignments_apply_run(cursor, *, run: str, now: datetime, cause: str) -> None:
    """Set-based: give the customers of a whole-base run the persona the engine
    chose for them (`segments.selectors.run_personas`), with a history row for each
    change."""
    t = {
        "persona": Persona._meta.db_table,
        "assignment": PersonaAssignment._meta.db_table,
        "change": PersonaChange._meta.db_table,
    }
    run_sql, run_params = run_personas(run=run).query.sql_with_params()
    at = connection.ops.adapt_datetimefield_value(now)
    # Table names come from model _meta; every value is a parameter.
    cursor.execute(
        f"""
        INSERT INTO {t["change"]}
            (customer_id, from_persona_id, to_persona_id, occurred_at, cause,
             contact_id)
        SELECT e.customer_id, a.persona_id, p.id, %s, %s, NULL
        FROM ({run_sql}) e
        LEFT JOIN {t["persona"]} p ON p.id = e.persona_id
        LEFT JOIN {t["assignment"]} a ON a.customer_id = e.customer_id
        WHERE COALESCE(a.persona_id, 0) <> COALESCE(p.id, 0)
        """,  # noqa: S608
        [at, cause, *run_params],
    )
    cursor.execute(
        f"""
        DELETE FROM {t["assignment"]}
        WHERE EXISTS (
            SELECT 1 FROM ({run_sql}) e
            WHERE e.customer_id = {t["assignment"]}.customer_id
              AND e.persona_id IS DISTINCT FROM {t["assignment"]}.persona_id
        )
        """,  # noqa: S608
        run_params,
    )
    cursor.execute(
        f"""
        INSERT INTO {t["assignment"]} (customer_id, persona_id, assigned_at, contact_id)
        SELECT e.customer_id, p.id, %s, NULL
        FROM ({run_sql}) e
        JOIN {t["persona"]} p ON p.id = e.persona_id
        ON CONFLICT (customer_id) DO NOTHING
        """,  # noqa: S608
        [at, *run_params],
    )
    # Read back only when someone subscribes to persona.changed.
    persona_changes_emit(
        changes=PersonaChange.objects.filter(
            cause=cause,
            occurred_at=now,
            customer_id__in=run_personas(run=run).values("customer_id"),
        ).order_by("customer_id")
    )


def personas_after_recompute() -> None:
    """After a whole-base pass: refresh the personas' figures once it commits."""
    if not Persona.objects.filter(status=Persona.Status.ACTIVE).exists():
        return
    from ..tasks import persona_figures_task

    transaction.on_commit(persona_figures_task.delay)
