"""The claims' tables for people: paired comparisons and verdicts as CSV, Markdown and HTML, with the
rules that produced each verdict written under the table."""

import math

import pandas as pd

from cnnstudy.analysis.claims import (
    ACCURACY_MEASURE,
    BOOTSTRAP_METHOD,
    CROSSED_METHOD,
    MEASURE_NAMES,
    effect_in_words,
    format_effect,
)
from cnnstudy.analysis.stats import format_p
from cnnstudy.base.files import atomic_path
from cnnstudy.base.rendering import percent, write_table


def _interval(low, high, measure):
    if math.isnan(low) or math.isnan(high):
        return "—"
    return f"[{format_effect(low, measure, signed=True)}, {format_effect(high, measure, signed=True)}]"


def _effect_with_interval(value, low, high, measure):
    """``+13.0 pp (+6.7 to +19.7)``: the effect, then its interval in the same unit."""
    effect = format_effect(value, measure, signed=True)
    if math.isnan(low) or math.isnan(high):
        return effect
    unit = effect.rsplit(" ", 1)[-1] if " " in effect else ""
    bounds = [format_effect(bound, measure, signed=True).removesuffix(f" {unit}") for bound in (low, high)]
    return f"{effect} ({bounds[0]} to {bounds[1]})"


def _count(value):
    return "—" if pd.isna(value) else f"{int(value):,}"


def _constant(series):
    """The one value of a column, or None when it varies."""
    values = series.astype(str).unique()
    return values[0] if len(values) == 1 else None


def write_comparisons(frame, csv_path, md_path, html_path, banner=""):
    """The pairwise table as CSV (all digits) and as Markdown/HTML (differences in percentage points).

    For people, what is the same in every row (the seed when there is one, the number of test images) is
    said once above the table, and the method, which follows from the seed column, under it.
    ``banner``: ``analysis.tables.data_banner`` of the runs, shown above the table on other data."""
    with atomic_path(csv_path) as temporary:
        frame.to_csv(temporary, index=False)
    seed = _constant(frame["seed"])
    images = _constant(frame["n_images"])
    columns = {"A": frame["model_a"], "B": frame["model_b"]}
    if seed is None:
        columns["seed"] = frame["seed"].astype(str)
    if images is None:
        columns["images"] = frame["n_images"].map(_count)
    columns |= {
        "accuracy A / B": [
            f"{percent(a).removesuffix(' %')} / {percent(b)}"
            for a, b in zip(frame["accuracy_a"], frame["accuracy_b"], strict=True)
        ],
        "A − B, pp (95 % CI)": [
            _effect_with_interval(v, lo, hi, ACCURACY_MEASURE).replace(" pp", "")
            for v, lo, hi in zip(frame["difference"], frame["ci_low"], frame["ci_high"], strict=True)
        ],
        "only A / only B right": [
            f"{_count(a)} / {_count(b)}"
            for a, b in zip(frame["a_only_correct"], frame["b_only_correct"], strict=True)
        ],
        "p": frame["p_value"].map(format_p),
    }
    same = []
    if seed is not None:
        same.append(f"seed {seed}" if seed != "mean" else "the mean over seeds")
    if images is not None:
        same.append(f"{int(float(images)):,} test images")
    intro = "Every pair of models on the same test images" + (f": {', '.join(same)}." if same else ".")
    notes = [
        f"Rows with a seed number: {BOOTSTRAP_METHOD}. Both models predict the same test images, so the "
        "interval comes from resampling images with both answers kept together (percentile bootstrap), and "
        "the p-value from the images only one of the two got right (*only A / only B right*; exact "
        "two-sided binomial test, p = 0.5).",
        f"Rows *mean* (when a model has two or more seeds): {CROSSED_METHOD}: every seed of each model "
        "(seeds are not paired across models), with an interval and a t-test whose variance has both "
        "parts: how the test images happen to favour one model, which more seeds cannot shrink, and how "
        "much a retrained model moves.",
        "*A − B*: the difference in test accuracy, in percentage points, positive when A is better. p-values "
        "here are not corrected for the number of pairs; the claims table applies Holm's correction.",
    ]
    title = "Paired comparisons between models on the same test images"
    write_table(pd.DataFrame(columns), md_path, html_path, title, intro, notes, banner=banner, wrap=[])


def _rules(confidence, alpha, width=None):
    level = f"{confidence:.0%}"
    return [
        f"*How each pair is tested.* Test accuracy with one seed: effect = accuracy difference, {level} "
        "interval = paired bootstrap over test images, p = exact McNemar test. Test accuracy with two or "
        "more seeds: effect = the difference of the accuracies over all seeds, with a "
        f"{level} interval and a t-test over both seeds and test images (crossed variance components, "
        "Welch–Satterthwaite degrees of freedom; a test across the seeds alone would miss that every seed "
        "is scored on the same test images). Training-history measures: with two or more seeds, mean "
        f"per-seed difference, {level} t-interval and one-sample t-test across seeds; with one seed no "
        "test and no interval. Effects are oriented so that positive means the first model is better "
        "(for epochs to 95 % of the best validation accuracy and for the train − validation gap at the "
        "best epoch, lower is better).",
        "*Multiple tests.* Holm's correction across every tested pair of the *better* and *best of* claims "
        "(those marked not applicable included, so their as-measured verdicts mean the same); a pair counts "
        f"at Holm p < {alpha:g}.",
        "*Better:* supported if Holm p < α and the interval lies above 0; contradicted if Holm p < α and "
        "the interval lies below 0; otherwise not supported (also when there is no test). *Best of:* the "
        "first model against each other one; supported if every pair is, contradicted if any pair is; the "
        "table shows the weakest pair (the smallest effect, named in the reason) with its own effect, interval, "
        "p and Holm p.",
        "*Equivalent* (a small difference) is judged by the interval alone, never merely because "
        "p > 0.05: supported if the interval lies inside ±margin (and, where the claim says the first "
        "model must not be worse, the effect is ≥ 0); contradicted if the interval lies entirely outside "
        "the margin, or entirely below 0 when the first model must not be worse; otherwise not supported.",
        "*Not applicable:* a model of the claim was not trained, the run did not use the study's archive "
        "and image size, or a ResNet-18 was not pretrained. The measured numbers are still shown, and the "
        "reason ends with the verdict they would give.",
        "*To settle:* for an accuracy claim not yet supported or contradicted, about how many seeds per "
        "model would give 80 % power to detect the difference the study reported (an equivalence claim: "
        "to fit its interval inside the margin), estimated from this run's own seed-to-seed and test-image "
        "variation. More seeds shrink only the seed part: when the test images' part alone is too wide, it "
        "says *not with this test set*. — where the claim is settled or nothing can be estimated (a model "
        "with one seed, or no number reported for it).",
        _why_one_seed(width),
    ]


def _p_cell(p, p_holm):
    if math.isnan(p) and math.isnan(p_holm):
        return "—"
    return f"{format_p(p)} ({format_p(p_holm)})"


def write_claims(claims, pairs, csv_path, md_path, html_path, premise=""):
    """CSV: one row per pair with its claim's columns (enough to redraw the forest plot); Markdown/HTML: one
    row per claim, with the rules that produced each verdict written underneath.

    For people, four columns: the claim (its measure in italics), the effect with its interval, p with
    Holm's p, and the verdict with its reason; the seeds, when every claim has the same, are said above the
    table, and *to settle* shows only when some claim has a number there. ``premise`` (``data_premise``)
    opens the page, set apart as a banner when it warns (bold, as on other data)."""
    claim_columns = claims.drop(columns=["measure", "outcome", "margin"]).add_prefix("claim_")
    joined = pairs.merge(claim_columns, on="claim_id", how="left")
    with atomic_path(csv_path) as temporary:
        joined.to_csv(temporary, index=False)
    confidence = pairs["confidence"].iloc[0] if len(pairs) else 0.95
    alpha = pairs["alpha"].iloc[0] if len(pairs) else 0.05
    measures = claims["measure"].map(lambda measure: MEASURE_NAMES.get(measure, measure))
    effect = f"effect ({percent(confidence, 0)} CI)"  # a history measure's effect is a sentence: it wraps
    columns = {
        "claim (measure)": [
            f"{text} *({measure}{_margin_words(margin, kind)})*"
            for text, measure, margin, kind in zip(
                claims["text"], measures, claims["margin"], claims["measure"], strict=True
            )
        ],
        effect: [
            effect_in_words(row.effect, row.measure, row.value_a, row.value_b, row.plateau_a, row.plateau_b)
            or _effect_with_interval(row.effect, row.ci_low, row.ci_high, row.measure)
            for row in claims.itertuples()
        ],
        "p (Holm p)": [_p_cell(p, h) for p, h in zip(claims["p_value"], claims["p_holm"], strict=True)],
    }
    seeds = _constant(claims["seeds"]) if len(claims) else None
    if seeds is None:
        columns["seeds"] = claims["seeds"].astype(str)
    if (claims["seeds_to_settle"].astype(str) != "—").any():
        columns["to settle"] = claims["seeds_to_settle"]
    columns["verdict: reason"] = [
        f"**{verdict}**: {reason}" if reason else f"**{verdict}**"
        for verdict, reason in zip(claims["verdict"], claims["reason"].fillna(""), strict=True)
    ]
    seed_words = "" if seeds is None else f" {_seed_words(seeds)}."
    warning = premise.startswith("**")
    intro = (
        "Each claim of the source study, checked against this run's models "
        f"(positive effect = the claim's first model is better).{seed_words}"
        + ("" if warning or not premise else f" {premise}")
    )
    write_table(
        pd.DataFrame(columns),
        md_path,
        html_path,
        "The study's claims, checked",
        intro=intro,
        notes=_rules(confidence, alpha, _interval_width(pairs)),
        banner=premise if warning else "",
        wrap=["claim (measure)", effect, "verdict: reason"],
    )


def _why_one_seed(width):
    """The note on interval width, in this run's own numbers where it has them."""
    if width is None:
        size = "On ~4,000 test images a 2-point accuracy difference has a 95 % interval about ±1.5 pp wide"
    else:
        images, narrowest, widest = width
        size = (
            f"On this run's {images:,} test images the accuracy intervals are ±{narrowest:.1f} to "
            f"±{widest:.1f} pp wide (wider where two models disagree on more images)"
        )
    return (
        f"*Why one seed rarely settles a claim.* {size}, and one seed says nothing about how much a "
        "retrained model would move: seed-to-seed variation is not measured at all. Differences of a few "
        "points need several seeds to be called."
    )


def _margin_words(margin, measure):
    return "" if pd.isna(margin) else f"; equivalence margin ±{format_effect(margin, measure)}"


def _interval_width(pairs):
    """(test images, smallest and largest half-width in pp) of this run's one-seed accuracy intervals."""
    accuracy = pairs[
        (pairs["measure"] == ACCURACY_MEASURE) & pairs["ci_low"].notna() & pairs["n_images"].notna()
    ]
    if accuracy.empty:
        return None
    half = 100 * (accuracy["ci_high"] - accuracy["ci_low"]) / 2
    return int(accuracy["n_images"].iloc[0]), float(half.min()), float(half.max())


def _seed_words(seeds):
    return "One seed per model" if seeds == "1" else f"{seeds} seeds per model"
