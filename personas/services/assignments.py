"""Persona assignments, written by the segment engine on each of its paths.

The engine evaluates the persona of every customer it evaluates as the last part
of its signature (",3,7,p12"); these functions turn those results into
`PersonaAssignment` rows and `PersonaChange` history, for a batch (incremental and
time paths) or for a whole-base run (set-based SQL over the run's rows).
"""

from datetime import datetime

from django.db import connection, transaction

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
    """Set-based: give the customers of a whole-base run the persona their fresh
    signature names, with history rows for each change.

    A signature ends in ",p<id>" exactly when the customer has persona <id>, so
    `LIKE '%,p' || id` picks it out on PostgreSQL and SQLite alike.
    """
    from segments.models import EvaluationRow

    t = {
        "eval": EvaluationRow._meta.db_table,
        "persona": Persona._meta.db_table,
        "assignment": PersonaAssignment._meta.db_table,
        "change": PersonaChange._meta.db_table,
    }
    at = connection.ops.adapt_datetimefield_value(now)
    # Table names come from model _meta; every value is a parameter.
    cursor.execute(
        f"""
        INSERT INTO {t["change"]}
            (customer_id, from_persona_id, to_persona_id, occurred_at, cause,
             contact_id)
        SELECT e.customer_id, a.persona_id, p.id, %s, %s, NULL
        FROM {t["eval"]} e
        LEFT JOIN {t["persona"]} p ON e.signature LIKE '%%,p' || p.id
        LEFT JOIN {t["assignment"]} a ON a.customer_id = e.customer_id
        WHERE e.run = %s AND COALESCE(a.persona_id, 0) <> COALESCE(p.id, 0)
        """,  # noqa: S608
        [at, cause, run],
    )
    cursor.execute(
        f"""
        DELETE FROM {t["assignment"]}
        WHERE customer_id IN (SELECT customer_id FROM {t["eval"]} WHERE run = %s)
          AND NOT EXISTS (
            SELECT 1 FROM {t["eval"]} e
            WHERE e.run = %s AND e.customer_id = {t["assignment"]}.customer_id
              AND e.signature LIKE '%%,p' || {t["assignment"]}.persona_id
          )
        """,  # noqa: S608
        [run, run],
    )
    cursor.execute(
        f"""
        INSERT INTO {t["assignment"]} (customer_id, persona_id, assigned_at, contact_id)
        SELECT e.customer_id, p.id, %s, NULL
        FROM {t["eval"]} e
        JOIN {t["persona"]} p ON e.signature LIKE '%%,p' || p.id
        WHERE e.run = %s
        ON CONFLICT (customer_id) DO NOTHING
        """,  # noqa: S608
        [at, run],
    )
    # Read back only when someone subscribes to persona.changed.
    persona_changes_emit(
        changes=PersonaChange.objects.filter(
            cause=cause,
            occurred_at=now,
            customer_id__in=EvaluationRow.objects.filter(run=run).values("customer_id"),
        ).order_by("customer_id")
    )


def personas_after_recompute() -> None:
    """After a whole-base pass: refresh the personas' figures once it commits."""
    if not Persona.objects.filter(status=Persona.Status.ACTIVE).exists():
        return
    from ..tasks import persona_figures_task

    transaction.on_commit(persona_figures_task.delay)
