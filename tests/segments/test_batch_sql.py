from datetime import UTC, datetime, timedelta

from segments.services.batch_sql import _PROBE_IDS, _PROBE_STEP, _classify

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_parameters_are_classified_by_how_they_move_between_compiles():
    params_a = [_PROBE_IDS[0], NOW - timedelta(days=30), "f", 2]
    params_b = [_PROBE_IDS[1], NOW + _PROBE_STEP - timedelta(days=30), "f", 2]

    query = _classify("SQL", params_a, "SQL", params_b, NOW)

    later = NOW + timedelta(hours=5)
    assert query.params(ids=[7, 8], now=later) == [
        [7, 8],
        later - timedelta(days=30),
        "f",
        2,
    ]


def test_a_parameter_that_moves_differently_from_the_clock_is_not_cached():
    params_a = [NOW]
    params_b = [NOW + 2 * _PROBE_STEP]

    assert _classify("SQL", params_a, "SQL", params_b, NOW) is None


def test_different_sql_is_not_cached():
    assert _classify("SQL A", [], "SQL B", [], NOW) is None
