"""Hooks: how the segment engine hands the apps built on it what it evaluated.

The engine evaluates persona rules in the same pass as segment rules (a persona is
the first of the active personas, in priority order, whose rule a customer meets),
but personas, their assignments and their history belong to `personas`, which is
built on `segments`. That app registers receivers for these hooks in its
`AppConfig.ready()`, as the later apps do for `crm.hooks`; with none registered the
engine evaluates segments only and a `persona` rule matches nobody.
"""

from crm.hooks import Hook

# Called with no arguments while the engine or the compiler prepares a pass. Each
# receiver returns the active persona rules as a sequence of
# `segments.fields.PersonaRule`, in assignment order (largest priority first).
persona_rules = Hook("persona_rules")

# Called after an incremental or time-based batch has been evaluated, inside its
# transaction with the customers' state rows locked: `wanted` maps each evaluated
# customer id to the id of the persona its rules chose (or None), with `now`,
# `cause` (a SegmentEvent.Cause) and `contacts` (customer id -> triggering contact
# id). Receivers store the assignments.
batch_personas_evaluated = Hook("batch_personas_evaluated")

# Called after a whole-base range has written its run to the scratch table, in the
# range's transaction, with `cursor`, `run` (the run's key), `now` and `cause`.
# Receivers apply the run's personas set-based.
run_personas_evaluated = Hook("run_personas_evaluated")

# Called with no arguments when a whole-base pass has finished (sizes recounted),
# inside its transaction: receivers schedule their own follow-up work on commit.
recompute_finished = Hook("recompute_finished")

# Called with `slug` before a segment is deleted. Each receiver returns the names of
# the things whose rules refer to the segment ("persona weekend-shoppers"); any name
# makes the deletion an error that lists them.
segment_references_found = Hook("segment_references_found")

# Called with `segment_ids` (the segments customers entered) after entries were
# recorded as SegmentEvent rows, inside that transaction: by a batch and by a
# whole-base range that tracks history. Receivers defer their work to
# `transaction.on_commit` (triggered campaigns greet the new members).
segment_entries_recorded = Hook("segment_entries_recorded")
