"""Comparing methods scored on the same sequences: DataFrames in, DataFrames out.

Every comparison the notebooks state comes with a paired bootstrap interval over sequences: the
sequences are resampled with replacement (all objects of a drawn sequence come along, since
objects of one video are not independent), and the statistic is the official object-weighted
mean of "A minus B". With 20 DAVIS-2016 val sequences, an interval that includes 0 means the
data cannot order the two methods.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError

SCORES = ("J-Mean", "F-Mean", "J&F-Mean")


def objects_from_csv(path):
    """An official per-sequence CSV (one row per object `<seq>_<k>`) -> J, F, J&F in % with a
    `sequence` column."""
    import pandas as pd

    objects = pd.read_csv(path)
    objects["sequence"] = objects["Sequence"].str.rsplit("_", n=1).str[0]
    for k in ("J-Mean", "F-Mean"):
        objects[k] = 100 * objects[k]
    objects["J&F-Mean"] = (objects["J-Mean"] + objects["F-Mean"]) / 2
    return objects


def _aligned(a, b, metric):
    """The two methods' scores on the same objects, and each object's sequence."""
    left, right = a.set_index("Sequence"), b.set_index("Sequence")
    if set(left.index) != set(right.index):
        differ = sorted(set(left.index) ^ set(right.index))
        raise InputError(f"the two methods were scored on different objects (e.g. {differ[0]})")
    right = right.loc[left.index]
    return left[metric].to_numpy(float), right[metric].to_numpy(float), left["sequence"].to_numpy()


def _resampled_means(values, groups, samples, seed):
    """Object-weighted means of `values` over `samples` bootstrap draws of whole groups."""
    names, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(names))
    counts = np.bincount(inverse, minlength=len(names)).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(names), size=(samples, len(names)))
    return sums[draws].sum(1) / counts[draws].sum(1), len(names)


def bootstrap(values, groups, samples: int = 10_000, seed: int = 0, level: float = 0.95) -> dict:
    """The object-weighted mean of per-object `values` and its percentile interval from a
    bootstrap over `groups` (sequences)."""
    values, groups = np.asarray(values, float), np.asarray(groups)
    if values.size == 0 or values.shape != groups.shape:
        raise InputError(f"bootstrap needs one group per value and at least one value; got "
                         f"{values.shape} values and {groups.shape} groups")
    if not 0 < level < 1 or int(samples) < 1:
        raise InputError(f"need 0 < level < 1 and samples >= 1; got level={level}, samples={samples}")
    means, n_groups = _resampled_means(values, groups, int(samples), seed)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return dict(mean=float(values.mean()), low=float(low), high=float(high),
                sequences=n_groups, objects=int(values.size))


def paired(a, b, metric: str = "J&F-Mean", **kwargs) -> dict:
    """A minus B (per-object DataFrames of objects_from_csv, the same objects), with its paired
    bootstrap interval over sequences."""
    left, right, groups = _aligned(a, b, metric)
    return bootstrap(left - right, groups, **kwargs)


def method_table(methods: dict, reference: str | None = None, **kwargs):
    """One row per method: J, F, J&F (%) with the interval of J&F; with a reference method, also
    "J&F minus the reference" and its paired interval."""
    import pandas as pd

    rows = []
    for name, objects in methods.items():
        ci = bootstrap(objects["J&F-Mean"], objects["sequence"], **kwargs)
        row = {"method": name, **{k: objects[k].mean() for k in SCORES},
               "J&F low": ci["low"], "J&F high": ci["high"], "sequences": ci["sequences"]}
        if reference is not None and name != reference:
            d = paired(objects, methods[reference], **kwargs)
            row.update({f"- {reference}": d["mean"], "diff low": d["low"], "diff high": d["high"]})
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def verdict(low: float, high: float) -> str:
    """What a 95% interval of "A minus B" lets one say."""
    return "ahead" if low > 0 else "behind" if high < 0 else "undecided"


def versus(methods: dict, subject: str, metric: str = "J&F-Mean", **kwargs):
    """The subject minus every other method: mean, paired interval, verdict (ahead / behind /
    undecided: the interval includes 0)."""
    import pandas as pd

    rows = {}
    for name, objects in methods.items():
        if name != subject:
            d = paired(methods[subject], objects, metric, **kwargs)
            rows[name] = {**d, "verdict": verdict(d["low"], d["high"])}
    return pd.DataFrame.from_dict(rows, orient="index")


def by_attribute(methods: dict, attributes, attribute_names=None, metric: str = "J&F-Mean"):
    """attribute x method: the mean score over the objects of the sequences showing it, with a
    `sequences` column (how many sequences carry each number). attributes: a bool DataFrame
    indexed by sequence (rpmnet.data.davis.db_info, or the built-in benchmark's table)."""
    import pandas as pd

    names = list(attribute_names or [c for c in attributes.columns if attributes[c].dtype == bool])
    first = next(iter(methods.values()))
    flags = attributes.reindex(first["sequence"]).reindex(columns=names).fillna(False).astype(bool)
    table = pd.DataFrame({m: {a: objects[metric].to_numpy()[flags[a].to_numpy()].mean()
                                if flags[a].any() else np.nan for a in names}
                          for m, objects in methods.items()})
    table["sequences"] = [int(attributes.reindex(first["sequence"].unique())[a].fillna(False).astype(bool).sum())
                          for a in names]
    return table


def attribute_margins(a, b, attributes, attribute_names, metric: str = "J&F-Mean", **kwargs):
    """Per attribute: A minus B on the sequences showing it, with its paired bootstrap interval,
    and a verdict: "ahead" (A), "behind" (interval excludes 0) or "undecided"."""
    import pandas as pd

    rows = {}
    for name in attribute_names:
        keep = set(attributes.index[attributes[name].fillna(False).astype(bool)])
        sub_a, sub_b = a[a.sequence.isin(keep)], b[b.sequence.isin(keep)]
        if sub_a.empty:
            continue
        d = paired(sub_a, sub_b, metric, **kwargs)
        rows[name] = {**d, "verdict": verdict(d["low"], d["high"])}
    return pd.DataFrame.from_dict(rows, orient="index")
