"""The prose the notebooks show, generated from measured tables (tested functions, not f-strings
in notebook cells). Every ordering a sentence states carries its 95% interval, and no sentence
orders two methods whose interval includes 0."""
from __future__ import annotations

PHRASES = {"ahead": "is ahead of", "behind": "is behind", "undecided": "cannot be told apart from"}


def interval(row, unit: str = "J&F") -> str:
    return (f"{row['mean']:+.1f} {unit} (95% CI [{row['low']:+.1f}, {row['high']:+.1f}], "
            f"{row['sequences']} sequences)")


def versus_text(table, subject: str, unit: str = "J&F") -> str:
    """Markdown bullets from rpmnet.compare.versus: one sentence per other method."""
    lines = [f"- {subject} {PHRASES[row['verdict']]} {name}: the difference is {interval(row, unit)}."
             for name, row in table.iterrows()]
    return "\n".join(lines)


def attribute_text(margins, subject: str, other: str, names: dict | None = None) -> str:
    """Markdown bullets from rpmnet.compare.attribute_margins (subject minus other, per attribute)."""
    names = names or {}
    lines = []
    for attribute, row in margins.iterrows():
        label = names.get(attribute, str(attribute).replace("_", " "))
        verdict = {"ahead": f"{subject} is ahead", "behind": f"{subject} is behind",
                   "undecided": "the data cannot order them"}[row["verdict"]]
        lines.append(f"- {label}: {subject} minus {other} = {interval(row)}: {verdict}.")
    return "\n".join(lines)


def protocol_text(table, names=("cpu", "cpu-fair"), baseline="zero-flow",
                  learned_below: float = 0.9) -> str:
    """Markdown bullets from rpmnet.analysis.protocol_comparison: per cell, whether it learned
    under each protocol, the flow it predicts on val, and its J&F change with the interval."""
    old, new = names
    lines = []
    for cell, row in table.iterrows():
        was, now = row[(old, "loss_ratio")], row[(new, "loss_ratio")]
        state = lambda r: "learned" if r < learned_below else "did not learn"  # noqa: E731
        gain = {k: row[("- old", k)] for k in ("mean", "low", "high", "sequences", "verdict")}
        floor = {k: row[(f"- {baseline}", k)] for k in ("mean", "low", "high", "sequences", "verdict")}
        lines.append(
            f"- {cell}: loss ratio {was:.2f} ({state(was)}) under {old}, {now:.2f} ({state(now)}) "
            f"under {new}, mean val flow {row[(new, 'val_flow')]:.2f} H/4 px per frame. J&F "
            f"{row[(old, 'J&F-Mean')]:.1f} -> {row[(new, 'J&F-Mean')]:.1f}; {new} minus {old} = "
            f"{interval(gain)}: it {PHRASES[gain['verdict']]} the {old} cell; minus {baseline} = "
            f"{interval(floor)}: it {PHRASES[floor['verdict']]} {baseline}.")
    return "\n".join(lines)
