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
    lines = []
    for name, row in table.iterrows():
        if row["verdict"] == "undecided":
            lines.append(f"- {subject} {PHRASES['undecided']} {name}: the difference is "
                         f"{interval(row, unit)}.")
        else:
            lines.append(f"- {subject} {PHRASES[row['verdict']]} {name} by {interval(row, unit)}.")
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
