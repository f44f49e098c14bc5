"""Paired bootstrap intervals and per-attribute tables, on cases with known answers."""
import numpy as np
import pandas as pd
import pytest

from rpmnet import compare
from rpmnet.errors import InputError


def objects(scores: dict):
    """{'<seq>_<k>': J&F} -> a per-object table like compare.objects_from_csv gives."""
    table = pd.DataFrame({"Sequence": list(scores), "J&F-Mean": list(scores.values())})
    table["sequence"] = table.Sequence.str.rsplit("_", n=1).str[0]
    table["J-Mean"] = table["F-Mean"] = table["J&F-Mean"]
    return table


def test_a_constant_difference_has_a_zero_width_interval():
    a = objects({f"s{i}_1": 10.0 + i for i in range(8)})
    b = objects({f"s{i}_1": 7.5 + i for i in range(8)})
    d = compare.paired(a, b)
    assert d["mean"] == d["low"] == d["high"] == pytest.approx(2.5)
    assert (d["sequences"], d["objects"]) == (8, 8)


def test_the_interval_matches_the_normal_theory_width():
    rng = np.random.default_rng(1)
    values = rng.normal(1.0, 1.0, 400)
    ci = compare.bootstrap(values, np.arange(400), samples=4000)
    half = 1.96 * values.std() / np.sqrt(400)  # normal theory: 1.96 standard errors of the mean
    assert ci["high"] - ci["low"] == pytest.approx(2 * half, rel=0.05)
    assert ci["low"] < 1.0 < ci["high"]


def test_objects_of_a_sequence_are_resampled_together_and_weighted_by_object():
    # One sequence of 3 objects at +3, one of 1 object at -1: object-weighted mean 2.
    a = objects({"x_1": 3.0, "x_2": 3.0, "x_3": 3.0, "y_1": -1.0})
    b = objects({"x_1": 0.0, "x_2": 0.0, "x_3": 0.0, "y_1": 0.0})
    d = compare.paired(a, b, samples=2000)
    assert d["mean"] == pytest.approx(2.0) and d["sequences"] == 2
    # Every draw is xx (3), xy (2) or yy (-1): the interval's ends are among those values.
    assert d["low"] == pytest.approx(-1.0) and d["high"] == pytest.approx(3.0)


def test_different_objects_or_bad_settings_are_refused():
    with pytest.raises(InputError, match="different objects"):
        compare.paired(objects({"x_1": 1.0}), objects({"y_1": 1.0}))
    with pytest.raises(InputError, match="level"):
        compare.bootstrap([1.0], ["x"], level=1.5)


def test_method_table_and_attributes():
    a = objects({"x_1": 50.0, "y_1": 30.0, "z_1": 10.0})
    b = objects({"x_1": 40.0, "y_1": 30.0, "z_1": 20.0})
    table = compare.method_table({"a": a, "b": b}, reference="b", samples=500)
    assert table.loc["a", "J&F-Mean"] == pytest.approx(30.0)
    assert table.loc["a", "- b"] == pytest.approx(0.0)
    attrs = pd.DataFrame({"CS": [True, True, False], "OCC": [False, False, True]}, index=["x", "y", "z"])
    by = compare.by_attribute({"a": a, "b": b}, attrs)
    assert by.loc["CS", "a"] == pytest.approx(40.0) and by.loc["OCC", "b"] == pytest.approx(20.0)
    assert list(by.sequences) == [2, 1]
    margins = compare.attribute_margins(a, b, attrs, ["CS", "OCC"], samples=500)
    assert margins.loc["OCC", "mean"] == pytest.approx(-10.0) and margins.loc["OCC", "verdict"] == "behind"
    assert margins.loc["CS", "verdict"] == "undecided"   # +10 and 0: the interval reaches 0


def test_versus_and_its_sentences():
    from rpmnet import report

    a = objects({f"s{i}_1": 20.0 + i for i in range(6)})
    methods = {"model": a, "low": objects({f"s{i}_1": 10.0 + i for i in range(6)}),
               "same": objects({f"s{i}_1": 20.0 + (1 if i % 2 else -1) + i for i in range(6)})}
    table = compare.versus(methods, "model", samples=500)
    assert table.loc["low", "verdict"] == "ahead" and table.loc["low", "mean"] == pytest.approx(10.0)
    assert table.loc["same", "verdict"] == "undecided"
    text = report.versus_text(table, "model")
    assert "model is ahead of low by +10.0 J&F (95% CI [+10.0, +10.0]" in text
    assert "cannot be told apart from same" in text and "6 sequences" in text
