import pytest

from crm import charts


def test_a_persona_keeps_its_colour_and_none_is_neutral():
    assert charts.colour_for_id(3) == charts.colour_for_id(3 + len(charts.CATEGORICAL))
    assert charts.colour_for_id(3) != charts.colour_for_id(4)
    assert charts.colour_for_id(None) == charts.NEUTRAL


def test_a_channel_has_one_colour_everywhere():
    assert charts.channel_colour("email") == charts.CHANNEL_COLOURS["email"]
    assert charts.channel_colour("carrier pigeon") == charts.NEUTRAL


def test_chart_spec_is_plain_data_and_refuses_unknown_kinds():
    spec = charts.chart_spec(
        "sizes",
        kind="line",
        title="Members",
        labels=["2026-12-05", "2026-12-06"],
        datasets=[charts.dataset("VIP", [3, None], colour="#000000")],
    )
    assert spec["datasets"][0]["data"] == [3.0, None]
    assert spec["labels"] == ["2026-12-05", "2026-12-06"]
    with pytest.raises(ValueError, match="use bar, line or doughnut"):
        charts.chart_spec("x", kind="pie3d", title="", labels=[], datasets=[])
