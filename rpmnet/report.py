"""The prose the notebooks show, generated from measured tables (tested functions, not f-strings
in notebook cells). Every ordering a sentence states carries its 95% interval, and no sentence
orders two methods whose interval includes 0."""
from __future__ import annotations

PHRASES = {"ahead": "is ahead of", "behind": "is behind", "undecided": "cannot be told apart from"}


def signed(x: float) -> str:
    """+1.2 / -0.4; a value that rounds to 0.0 keeps two decimals, so that the side of 0 an
    interval's end lies on stays visible (+0.03, not +0.0)."""
    return f"{x:+.2f}" if abs(x) < 0.05 else f"{x:+.1f}"


def interval(row, unit: str = "J&F") -> str:
    return (f"{signed(row['mean'])} {unit} (95% CI [{signed(row['low'])}, {signed(row['high'])}], "
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


def margins_text(margins) -> str:
    """Markdown bullets from rpmnet.analysis.column_margins: per backbone column, deformable minus
    the column's best other cell, with its interval, and the seed runs where there are some."""
    if margins.empty:
        return "No backbone column has both a deformable cell and another cell yet."
    lines = []
    for backbone, row in margins.iterrows():
        said = {"ahead": "deformable matching wins the column",
                "behind": f"deformable matching loses the column to {row['rival']}",
                "undecided": "the data cannot say which of the two is better"}[row["verdict"]]
        margin = dict(row, mean=row["margin"])
        line = (f"- {backbone}: {row['deformable']} minus {row['rival']} (the column's best other "
                f"cell) = {interval(margin)}: {said}.")
        seeded = row.get("seed-mean margin")
        if seeded is not None and seeded == seeded:  # present and not NaN: seeds on both sides
            line += (f" Over seeds, {row['deformable']} is {row['deformable seed_mean']:.1f} "
                     f"(range {row['deformable seed_range']:.1f} over {row['deformable seeds']:.0f} seeds) "
                     f"and {row['rival']} {row['rival seed_mean']:.1f} (range {row['rival seed_range']:.1f} "
                     f"over {row['rival seeds']:.0f}): the seed means differ by {row['seed-mean margin']:+.1f}.")
        lines.append(line)
    return "\n".join(lines)


def baseline_text(versus, baseline: str, named: bool = True) -> str:
    """One paragraph from rpmnet.analysis.versus_baseline: how many trained cells are ahead of,
    behind, or cannot be told apart from the baseline (95% intervals), naming the latter two
    (or, with named=False, only counting them: where a table beside it has every interval)."""
    counts = versus["verdict"].value_counts()
    text = (f"**{counts.get('ahead', 0)} of {len(versus)}** trained cells are ahead of {baseline} "
            f"(the 95% interval of cell minus {baseline} excludes 0)")
    if not named:
        return text + (f", {counts.get('undecided', 0)} cannot be told apart from it and "
                       f"{counts.get('behind', 0)} are behind it.")
    named = {v: ", ".join(f"{cell} ({interval(row)})" for cell, row in versus.iterrows()
                          if row["verdict"] == v) for v in ("undecided", "behind")}
    if named["undecided"]:
        text += f"; these cannot be told apart from it: {named['undecided']}"
    if named["behind"]:
        text += f"; these are behind it: {named['behind']}"
    return text + "."


def table2_discussion(table, seeds, longer_facts: dict, data: str, davis: str | None,
                      margins=None, floor=None, planned: int | None = None) -> str:
    """Notebook 03's closing discussion (Markdown): what was measured and why it differs from the
    paper, every number from the merged `table`, the seed runs (ablation.seed_runs), the longer
    runs' summaries ({profile: analysis.longer_summary}), the data's one-line description, the
    DAVIS layout of the val set ("2016", "2017"; None: the built-in benchmark), the intervals of
    "deformable wins its column" (analysis.column_margins) and of "beats copy-first"
    (analysis.versus_baseline), and how many cells the profile's grid has (None: not said)."""
    from . import analysis

    facts = analysis.summary(table)
    rho = facts["rank_rho"]
    columns = analysis.by_backbone(table).set_index("backbone")
    depth = _depth_sentence(table, columns)
    longer_note = "".join(
        f". Of the {len(f['not_learned'])} cells that had not learned and were trained again for "
        f"{_profile_steps(name)} steps ({', '.join(f['not_learned'])}), {len(f['now_beat'])} now beat it "
        f"(the section on longer training), so a low cell here can be one that was not trained long enough"
        for name, f in longer_facts.items() if f['not_learned'])
    of_grid = f" of the profile's {planned}" if planned and planned > facts["cells"] else ""
    return f"""
**Measured.** {facts['cells']}{of_grid} Table 2 cells ({facts['backbones']} backbone column(s)),
{_training_sentence(table)}, {facts['train_minutes']:.1f} minutes of training and
{_propagation_minutes(table):.1f} of propagation in total, on {data}. {_column_sentence(facts, margins)}
The rank correlation with the paper is {rho:.2f} over {facts['rank_n']} cells (p = {facts['rank_pvalue']:.2g},
treating the cells as independent). Our highest J&F point estimate is {facts['best']:.1f}
({facts['best_cell']}); copy-first reaches {facts['copy_first']:.1f}{
'' if facts['above_copy_first'] else ', so at this scale no trained matching module moves masks better than not moving them at all'}{
'' if floor is None else '. ' + baseline_text(floor, 'copy-first')}

**Differences a reader will notice.**

1. *Levels*: {_level_sentence(table)} The data and the scale differ (below), so the levels are not
   comparable; only the order within the table can be.
2. {_zero_flow_sentence(facts, longer_note)}
3. {depth}
4. *Network size*: {_size_sentence(facts)} (notebook 01 counts them per row).
5. {_seed_sentence(seeds)}

**Why the levels differ.** (1) *Data*: {_data_sentence(davis)}; its objects, motions and sizes set
the level of every cell and of the baselines alike. (2) *Scale*: minutes of CPU training on small
crops instead of the paper's GPU training on DAVIS + YouTube-VOS (about 5.7 hours of video); a
matching module that has barely started to learn stays close to zero-flow, and zero-flow is close
to copy-first. (3) *Assumptions*: the main paper's method section is missing, so the warp
(ASSUMPTIONS 1-2), the loss (3), the training pairs (4), initialisation without pretrained weights
(5), multi-object propagation from t-1 (6), the widths of the small backbones and variants (7-8)
and BatchNorm in the matching module (9) are our choices, listed at the top. Any of them could
shift every cell; how much was not measured (for scale, Table 2's own spread over these cells is
{facts['paper_spread']:.1f} points).

**What would settle the claim.** The `paper` profile: real DAVIS-2017 (`davis_root`), a GPU, the
full training, and several seeds per cell.
"""


def _profile_steps(name) -> int:
    from .config import get_profile

    return get_profile(name).steps


def _training_sentence(table) -> str:
    """How the finished cells were trained, from the table: steps per column and the warm start."""
    from . import analysis

    cells = analysis.trained(table).dropna(subset=["J&F-Mean"])
    text = f"trained with {_backbone_list(_column_steps(cells), 'steps')}"
    warm = cells.get("warm_start_steps")
    if warm is not None and (warm.fillna(0) > 0).any():
        text += f", after a {int(warm.max())}-step warm start shared by the cells of each column"
    return text


def _column_steps(cells) -> dict:
    """{backbone: training steps} of the finished cells of each column."""
    return {b: int(n) for b, n in cells.groupby("backbone", sort=False).train_steps.max().items()}


def _propagation_minutes(table) -> float:
    from . import analysis

    return float(analysis.trained(table).propagate_seconds.sum() / 60)


def _level_sentence(table) -> str:
    """Ours minus the paper's on average, for J, F and J&F: means of differences, not an ordering."""
    from . import analysis

    d = {m: float(analysis.scores(table, m).dropna().difference.mean()) for m in ("J", "F", "J&F")}
    return (f"on average our cells are {d['J&F']:+.1f} J&F points from the paper's (J {d['J']:+.1f}, "
            f"F {d['F']:+.1f}); on other data this orders nothing.")


def _zero_flow_sentence(facts, longer_note: str) -> str:
    below = facts["below_zero_flow"]
    if not below:
        return (f"*No trained cell scores below the zero-flow baseline* ({facts['zero_flow']:.1f}, "
                f"point estimates; the section on learning has the intervals){longer_note}.")
    kinds = " and ".join(facts["below_kinds"])
    return (f"*{len(below)} trained cell(s) score below the zero-flow baseline* (point estimates: "
            f"{', '.join(below)}); the section on learning above shows how little each one's training "
            f"loss got below the zero-flow loss"
            + (f", and hypotheses about the structure of the {kinds} modules" if kinds else "") + f"{longer_note}.")


def _size_sentence(facts) -> str:
    from .config import ModelConfig

    cell, millions = facts["largest_cell"], facts["largest_parameters"] / 1e6
    if ModelConfig.from_cell(cell).backbone == "resnet101":
        return (f"Table 1 as printed gives {millions:.1f}M parameters for {cell}, our largest cell, "
                f"where the paper is quoted at 43M; we kept Table 1 as printed")
    return (f"our reading of Table 1 for the smaller backbones (ASSUMPTION 7) gives {millions:.1f}M "
            f"parameters for {cell}, our largest cell")


def _seed_sentence(seeds) -> str:
    """What the seed runs say about every interval above (which resamples sequences, not trainings)."""
    if seeds is None or seeds.empty:
        return ("*One training per cell.* Seed-to-seed variation was not measured, and the intervals "
                "resample the val sequences, not the training, so small differences between cells "
                "are not evidence either way.")
    return (f"*One training per cell, except {len(seeds)} cell(s) retrained with other seeds* "
            f"({', '.join(seeds.index)}): a retraining moved a cell's J&F by up to "
            f"{seeds['range'].max():.1f} points. The intervals resample the val sequences, not the "
            f"training: where one excludes 0 but the difference is below that range, a retraining "
            f"may reverse it.")


def _data_sentence(davis: str | None) -> str:
    if davis == "2016":
        return ("DAVIS-2016 val, one object per sequence, where the paper scores DAVIS-2017 val (up "
                "to five objects per sequence, which also tests telling objects apart)")
    if davis == "2017":
        return "the real DAVIS-2017 val set, as in the paper"
    return "a synthetic benchmark of photos moving over photos, not DAVIS-2017 val"


def _column_sentence(facts, margins) -> str:
    """The column claim: highest J&F point estimate in how many columns, and (with margins) how
    many of those leads and losses the intervals support."""
    text = (f"Deformable matching has the highest J&F point estimate in {facts['ours_wins']} of "
            f"{facts['columns']} column(s) (paper: {facts['paper_wins']} of {facts['columns']}).")
    if margins is None or margins.empty:
        return text + " No interval was computed for these margins."
    counts = margins["verdict"].value_counts()
    return text + (f" By the 95% intervals of its margin over each column's best other cell, it "
                   f"is ahead in {counts.get('ahead', 0)}, behind in {counts.get('behind', 0)} and "
                   f"cannot be told apart in {counts.get('undecided', 0)} of the {len(margins)} column(s).")


def _depth_sentence(table, columns) -> str:
    """Deeper backbones, compared on the matching settings that ran in every column (a column
    mean over other cells would compare cell sets, not depths); means only, no ordering."""
    from . import analysis
    from .config import ModelConfig

    if len(columns) < 2:
        return "*Depth is not tested*: this run has one backbone column."
    cells = analysis.trained(table).dropna(subset=["J&F-Mean"])
    module = cells.cell.map(lambda c: ModelConfig.from_cell(c).module)
    shared = sorted(set.intersection(*(set(module[cells.backbone == b]) for b in cells.backbone.unique())))
    if not shared:
        return "*Depth is not tested*: no matching setting ran in every backbone column."
    mean = cells[module.isin(shared)].groupby("backbone", sort=False)["J&F-Mean"].mean()
    paper = cells[module.isin(shared)].assign(p=lambda t: (t.paper_J + t.paper_F) / 2).groupby(
        "backbone", sort=False)["p"].mean()
    listed = ", ".join(f"{b} {mean[b]:.1f} (paper {paper[b]:.1f})" for b in mean.index)
    return (f"*Depth*: on the {len(shared)} setting(s) that ran in every column ({', '.join(shared)}), "
            f"the column means are {listed}. No interval was computed for these means, so they "
            f"order nothing; the columns were {_training_sentence(table)}.")


def cells_markdown(table, objects: dict, baselines=("copy-first", "classical-flow")) -> str:
    """The real-video Table 2 as the README shows it (Markdown): per method, J, F, J&F with its
    95% bootstrap interval over sequences, each method minus each baseline (paired intervals),
    its loss ratio, mean val flow, the paper's J&F, and its train + propagate seconds. Baselines first, then the trained cells column by column (ResNet-18 first).
    objects: {cell: per-object table} of every row of `table` (Experiment.objects)."""
    from . import analysis
    from .compare import bootstrap, paired
    from .config import BACKBONES

    header = ["method", "J", "F", "J&F [95% CI]", *(f"minus {b} [95% CI]" for b in baselines),
              "loss ratio", "val flow", "paper J&F", "train + propagate s"]
    cells = analysis.trained(table)
    order = [*table[~table.cell.isin(cells.cell)].cell,
             *cells.assign(k=cells.backbone.map(BACKBONES.index)).sort_values("k", kind="stable").cell]
    level = lambda d: f"{d['mean']:.1f} [{d['low']:.1f}, {d['high']:.1f}]"  # noqa: E731
    diff = lambda d: f"{signed(d['mean'])} [{signed(d['low'])}, {signed(d['high'])}]"  # noqa: E731
    number = lambda v, f: "" if v != v else format(v, f)  # noqa: E731 - NaN (a baseline) -> blank
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in order:
        row = table.set_index("cell").loc[cell]
        diffs = [diff(paired(objects[cell], objects[b])) if cell != b else "" for b in baselines]
        paper = (row.paper_J + row.paper_F) / 2
        lines.append("| " + " | ".join([
            cell, f"{row['J-Mean']:.1f}", f"{row['F-Mean']:.1f}",
            level(bootstrap(objects[cell]["J&F-Mean"], objects[cell]["sequence"])), *diffs,
            number(row.loss_ratio, ".2f"), number(row.val_flow, ".2f"), number(paper, ".1f"),
            f"{row.train_seconds:.0f} + {row.propagate_seconds:.0f}"]) + " |")
    return "\n".join(lines)


def seeds_markdown(seeds) -> str:
    """Seed runs (ablation.seed_runs: one row per cell, a column per seed, mean, range) as Markdown."""
    runs = [c for c in seeds.columns if c not in ("mean", "range")]
    lines = ["| cell | " + " | ".join(runs) + " | mean | range |",
             "|" + "---|" * (len(runs) + 3)]
    for cell, row in seeds.iterrows():
        values = ["" if row[s] != row[s] else f"{row[s]:.1f}" for s in runs]
        lines.append(f"| {cell} | " + " | ".join(values) + f" | {row['mean']:.1f} | {row['range']:.1f} |")
    return "\n".join(lines)


def retrained_markdown(pairs, noise: dict, seed_noise: dict) -> str:
    """The cells trained twice with the same seed, on an earlier processor and here
    (ablation.retrained), as a Markdown table, then what the differences say about training noise
    (analysis.processor_noise) beside the seed runs' (analysis.training_sd); "" without pairs."""
    if not noise:
        return ""
    first = pairs.earlier_processor.replace("", "earlier processor").iloc[0]
    here = pairs.processor.replace("", "this processor").iloc[0]
    lines = [f"| cell | seed | {first} | {here} | difference |", "|---|---|---|---|---|"]
    lines += [f"| {r.cell} | {r.seed} | {r.earlier:.2f} | {r.here:.2f} | {r.difference:+.2f} |"
              for r in pairs.itertuples()]
    text = (f"Retrained with the same seed, settings and data on another processor, {noise['pairs']} "
            f"cell(s) moved by {noise['mean_abs']:.2f} J&F on average (at most {noise['max_abs']:.2f}; "
            f"{noise['within']} of {noise['pairs']} within {noise['tolerance']:g}). The mean difference, "
            f"{signed(noise['mean'])} (95% CI [{signed(noise['mean_low'])}, {signed(noise['mean_high'])}]), "
            + ("is a bias of one processor (its interval excludes 0)" if noise["mean_low"] > 0 or
               noise["mean_high"] < 0 else "cannot be told apart from 0 (no processor bias is detectable)")
            + f"; one training's standard deviation, estimated from these pairs, is {noise['sd']:.2f} points "
            f"(95% CI [{noise['sd_low']:.2f}, {noise['sd_high']:.2f}])")
    if seed_noise:
        seed = seed_noise["sd"]
        text += (f", against {seed:.1f} from the seed runs ({seed_noise['cells']} cells, "
                 f"{seed_noise['runs']} runs): ")
        text += ("a processor change moves a training less than a change of seed, which also draws "
                 "other initial weights and batches" if seed > noise["sd_high"] else
                 "a processor change moves a training more than a change of seed" if seed < noise["sd_low"]
                 else "this data cannot tell the two kinds of retraining apart")
    if noise["within"] == noise["pairs"]:
        text += f". The two processors reproduce these cells to {noise['tolerance']:g}."
    else:
        text += (f". A cell's score is reproduced to {noise['tolerance']:g} only on the processor "
                 "that trained it.")
    return "\n".join(lines) + "\n\n" + text


def claims_markdown(table, margins, floor, flow, twins=None) -> str:
    """The README's claims (Markdown bullets), every one from the measured tables: "deformable wins
    its column" (analysis.column_margins), what the offsets add over the standard twin
    (analysis.twin_margins, when given), the cells against copy-first and against classical flow
    (analysis.versus_baseline), and the rank agreement with the paper (over all cells, with its
    p-value, and within each column)."""
    from . import analysis

    rho = analysis.rank_agreement(table)
    columns = analysis.rank_by_column(table)
    within = ", ".join(f"{name} {row.rho:.2f} ({row.cells:.0f} cells)" for name, row in columns.iterrows())
    return "\n".join([
        "*Deformable matching wins its column* (95% intervals of its margin):", margins_text(margins),
        *(["", paper_margins_text(table, margins)] if not margins.empty else []),
        *(["", twin_text(twins)] if twins is not None and not twins.empty else []), "",
        f"- Against copy-first: {baseline_text(floor, 'copy-first')}",
        f"- Against classical flow: {baseline_text(flow, 'classical-flow', named=False)}",
        f"- Rank agreement with the paper's J&F: Spearman's rho {rho['rho']:.2f} over {rho['n']} cells "
        f"(p = {rho['pvalue']:.2g}, treating the cells as independent); within a column or over the "
        f"modules' means: {within}."])


def _where(value: float, row) -> str:
    """Where the paper's value lies against our interval (row's low and high)."""
    return ("inside our interval" if row["low"] <= value <= row["high"] else
            "above our interval" if value > row["high"] else "below our interval")


def twin_text(twins) -> str:
    """Markdown bullets from rpmnet.analysis.twin_margins: per column and over the columns, the
    deformable cell minus its standard twin with its interval, and where the paper's margin lies."""
    if twins.empty:
        return "No backbone column has both the deformable cell and its standard twin yet."
    lines = ["*What the learned offsets add* (the deformable cell minus its standard twin: the same "
             "three 3x3 layers at dilation 1 without offsets, a comparison fixed in advance rather than "
             "picked on these val scores; 95% intervals):"]
    said = {"ahead": "the offsets help", "behind": "the offsets hurt",
            "undecided": "the data cannot say whether the offsets help"}
    for backbone, row in twins.iterrows():
        lines.append(f"- {backbone}: {row['deformable']} minus {row['twin']} = "
                     f"{interval(dict(row, mean=row['margin']))}: {said[row['verdict']]}; the paper's margin "
                     f"{signed(row['paper'])} is {_where(row['paper'], row)}.")
        if row.get("with training low", float("nan")) == row.get("with training low"):  # present, not NaN
            wide = dict(low=row["with training low"], high=row["with training high"])
            lines[-1] += (f" With the training noise added: [{signed(wide['low'])}, {signed(wide['high'])}] "
                          f"({said[row['with training verdict']]}), the paper's margin is "
                          f"{_where(row['paper'], wide)}.")
    first = twins.iloc[0]
    if first.get("training sd", float("nan")) == first.get("training sd"):
        lines.append(f"(Training noise: one cell's J&F varies with its seed by a standard deviation of "
                     f"{first['training sd']:.1f} points, pooled over the {first['seed cells']:.0f} cells "
                     f"with seed runs; the wider intervals add it to the bootstrap's, a normal approximation.)")
    return "\n".join(lines)


def paper_margins_text(table, margins) -> str:
    """Is the paper's margin inside ours? Per column, the paper's J&F of the same two cells as
    analysis.column_margins (deformable minus our column's best other cell) against our interval."""
    paper = table.set_index("cell").eval("(paper_J + paper_F) / 2")
    parts = []
    for backbone, row in margins.iterrows():
        theirs = paper[row["deformable"]] - paper[row["rival"]]
        parts.append(f"{backbone} {signed(theirs)} ({_where(theirs, row)} [{signed(row['low'])}, "
                     f"{signed(row['high'])}])")
    return ("The paper's J&F margin between the same two cells (on DAVIS-2017 val): "
            + "; ".join(parts) + ". Outside the interval, this data does not support the paper's margin "
            "(the interval resamples the val sequences, not the training).")


# --- notebook prose (nb03/nb05)
# Sentences whose truth depends on the profile or on the measured tables: the notebooks' static
# Markdown stays profile-neutral and these say what this run did.


def _backbone_list(values: dict, unit: str) -> str:
    """{backbone: n} -> "1200 steps for every cell" or "600 steps for resnet18, 400 for resnet34"."""
    if len(set(values.values())) == 1:
        return f"{next(iter(values.values()))} {unit} for every cell"
    parts = [f"{n} {unit + ' ' if i == 0 else ''}for {b}" for i, (b, n) in enumerate(values.items())]
    return ", ".join(parts)


def training_scale(profile, table=None) -> str:
    """How a grid's cells were trained (one sentence): backbones and steps (the table's
    train_steps where cells finished, else the profile's), warm start and CPU threads."""
    from . import analysis
    from .config import get_profile

    profile = get_profile(profile)
    cells = analysis.trained(table).dropna(subset=["train_steps"]) if table is not None else None
    if cells is not None and not cells.empty:
        steps = _column_steps(cells)
    else:
        steps = {b: profile.steps_for(b) for b in profile.ablation_backbones}
    start = (f"each after a shared {profile.warm_start}-step warm start of its backbone column"
             if profile.warm_start else "each from scratch")
    threads = f"{profile.threads} CPU threads per cell" if profile.threads else "torch's default threads"
    return (f"The cells were trained with {_backbone_list(steps, 'steps')}, {start}, "
            f"on {threads} (profile {profile.name}).")


def protocol_status(profile, twin: str | None = None) -> str:
    """Whether a grid follows the plain reading or the issue-13 protocol, and which grid is its
    twin (config.PROTOCOL_TWINS, read both ways); `twin`: the twin's name when its grid was found."""
    from .config import PROTOCOL_TWINS, get_profile

    profile = get_profile(profile)
    gap = f"a random frame gap 1..{profile.max_gap}" if profile.max_gap else "frame gap 1"
    settings = (f"{'a shared ' + str(profile.warm_start) + '-step warm start' if profile.warm_start else 'every cell from scratch'}, "
                f"row 108 starting {'at zero' if profile.flow_init == 'zero' else 'from small random weights'}, "
                f"{gap}, {_backbone_list({b: profile.steps_for(b) for b in profile.ablation_backbones}, 'steps')}")
    if profile.warm_start:
        plain = {new: old for old, new in PROTOCOL_TWINS.items()}.get(profile.name)
        where = (f"its plain-reading twin is `{plain}` (`results/table2_{plain}.csv`)" if plain else
                 "no plain-reading twin of it is listed in `config.PROTOCOL_TWINS`")
        return f"This grid already uses the protocol ({settings}); {where}."
    text = f"The grid above follows the plain reading: {settings}."
    if twin:
        return text + f" Below, its cells beside the same cells retrained under `{twin}`."
    return text + f" No grid of profile {profile.name} was retrained under the cpu-fair protocol."


NAMED_AT_MOST = 6   # a longer list of cell ids is unreadable in a sentence; the tables have them


def best_estimate(best: str, score: float, versus, seed: int = 0) -> str:
    """The highest J&F of a grid, said as what it is: one training's point estimate, with how many
    other trained cells its 95% intervals (compare.versus of `best`) cannot order it against."""
    counts = versus["verdict"].value_counts() if len(versus) else {}
    undecided = list(versus.index[versus["verdict"] == "undecided"]) if len(versus) else []
    text = f"**{best}** has the highest J&F point estimate (seed {seed}), {score:.1f}"
    if not len(versus):
        return text + "; no other trained cell to compare it with."
    text += (f"; by the 95% paired intervals it is ahead of {counts.get('ahead', 0)} of the "
             f"{len(versus)} other trained cells and cannot be told apart from {len(undecided)}")
    return text + (f" ({', '.join(undecided)})." if 0 < len(undecided) <= NAMED_AT_MOST else ".")


def _module_name(label) -> str:
    """A by_module index tuple ("Standard", "3 / 1", 3) -> "standard 3 / 1, 3 layers"."""
    matching, kernel, layers = label
    return f"{matching.lower()} {kernel}, {layers} layer{'s' if layers > 1 else ''}"


def module_lead_text(modules, seeds) -> str:
    """From analysis.by_module: deformable matching's rank and its lead over the best other
    module's mean (analysis.deformable_lead), against the seed range, and whether the modules'
    means run over the same backbone columns."""
    from . import analysis

    others = modules.drop("Deformable", level="matching")
    if others.empty:  # e.g. cpu-davis: a grid of the deformable cell alone
        return "Deformable matching is the only matching module of this grid: there is no module to rank it against."
    lead = analysis.deformable_lead(modules)
    rival = _module_name(others["ours"].idxmax())
    text = (f"Deformable matching ranks **{lead['rank']} of {len(modules)}** here (paper: "
            f"{lead['paper_rank']}), {lead['lead']:+.2f} J&F points against the best other module "
            f"({rival}), its mean over {lead['columns']} column(s).")
    if not seeds.empty and abs(lead["lead"]) < seeds["range"].max():
        text += (f" That is less than the {seeds['range'].max():.1f}-point range a retraining alone "
                 f"produced (below), so by this average the two cannot be told apart.")
    if modules["columns"].nunique() > 1:
        text += (f" The modules' means run over {modules['columns'].min()} to "
                 f"{modules['columns'].max()} columns (`columns`): a module that ran in fewer columns "
                 f"is averaged over other backbones than the rest, so here depth is not taken out.")
    return text + " This average over columns has no interval of its own: the per-column intervals above decide."


def retraining_note(seeds) -> str:
    """What the intervals over sequences leave out: retraining (ablation.seed_runs)."""
    text = ("These intervals cover the sampling of sequences, not retraining: the cells were "
            "trained once each.")
    if seeds.empty:
        return text + (" How far a retraining moves a cell was not measured here, so a difference "
                       "that excludes 0 may still reverse when the cells are trained again.")
    return text + (f" Retraining a cell with another seed moved its J&F by up to "
                   f"{seeds['range'].max():.1f} points ({len(seeds)} cell(s), notebook 03), so a "
                   f"difference smaller than that may reverse on retraining, whatever its interval.")


def attribute_notes(table, picked: dict, rival: str, margins, level: float = 0.95) -> str:
    """How to read the per-attribute margins (compare.attribute_margins of the deformable cell
    minus `rival`): how many sequences each covers, how many intervals would exclude 0 by chance
    alone, and, when the two cells come from different backbone columns, that they do."""
    from . import analysis
    from .config import BASELINES, ModelConfig

    deformable = picked["deformable"]
    backbone = {c: ModelConfig.from_cell(c).backbone for c in (deformable, rival) if c not in BASELINES}
    notes = []
    if len(margins):
        low, high, total = margins["sequences"].min(), margins["sequences"].max(), len(margins)
        notes.append(f"Each attribute's interval rests on {low} to {high} sequences. With {total} "
                     f"intervals at {level:.0%}, about {total * (1 - level):.1f} would exclude 0 by "
                     f"chance alone if the two were equal on every attribute: count the exclusions "
                     f"against that.")
    if len(set(backbone.values())) > 1:
        cells = analysis.trained(table).set_index("cell")
        runner = cells[(cells.matching == "deformable") & (cells.index != deformable)]["J&F-Mean"]
        gap = (f" ({deformable} leads the next deformable cell, {runner.idxmax()}, by "
               f"{cells.loc[deformable, 'J&F-Mean'] - runner.max():.2f} J&F)" if len(runner) else "")
        notes.append(f"{deformable} and {rival} come from different backbone columns: each is its "
                     f"module's highest J&F point estimate over all columns{gap}, so these margins "
                     f"compare modules across backbones, depth included.")
    return " ".join(notes)


def timing_markdown(table, cells_per_column: int = 7) -> str:
    """Grid time per backbone column (Markdown): what was measured (the finished cells' training
    and propagation, the column's warm start, summed) and the column of all its cells at the
    median cell (warm start + cells x median): a cell that ran beside another job inflates the
    sum but not the median, and an unfinished column gets its estimate from the cells it has."""
    from . import analysis
    from .config import BACKBONES

    cells = analysis.trained(table).dropna(subset=["J&F-Mean"])
    lines = ["| column | cells run | warm start min | training min | propagation min | min per cell, "
             f"median (range) | measured sum, min | {cells_per_column} cells at the median, min |",
             "|" + "---|" * 8]
    for backbone in [b for b in BACKBONES if b in set(cells.backbone)]:
        column = cells[cells.backbone == backbone]
        per_cell = (column.train_seconds + column.propagate_seconds) / 60
        warm = float(column.warm_start_seconds.fillna(0).max()) / 60
        lines.append(f"| {analysis.BACKBONE_NAMES[backbone]} | {len(column)} | {warm:.1f} | "
                     f"{column.train_seconds.sum() / 60:.1f} | {column.propagate_seconds.sum() / 60:.1f} | "
                     f"{per_cell.median():.1f} ({per_cell.min():.1f}-{per_cell.max():.1f}) | "
                     f"{warm + per_cell.sum():.0f} | {warm + cells_per_column * per_cell.median():.0f} |")
    return "\n".join(lines)
