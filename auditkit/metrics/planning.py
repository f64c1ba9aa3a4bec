"""Planning an audit: the power of the verdict rule at another number of texts and seeds, and the smallest
number of texts that reaches a power, from a pilot audit's standard errors or from a stated design.

**Scaling a pilot.** A selectivity row's interval rests on ``se_hat = max(se_seeds, se_sampling)``
(:data:`auditkit.metrics.selectivity.INTERVAL_RULE`). The test-sampling standard error of a mean over seeds
is that of a mean of ``test texts * seeds`` paired per-text differences (clustered by text), so it scales as
``1 / sqrt(test_texts * seeds)``. The between-seed standard error is ``sd_seed / sqrt(seeds)``, where one
seed's spread holds its test sampling (which shrinks as ``1 / sqrt(test_texts)``) and its training variance
(another split, another fit). **Assumption:** the training variance shrinks with more texts as fast as the
test sampling (at least as fast, for the plan to be safe), so the whole ``se_hat`` scales as ``1 / sqrt(test_texts * seeds)``. The plan is exact
when it shrinks exactly as fast, and conservative (more texts than needed) when it shrinks faster. Where it
shrinks more slowly (a fit whose spread does not come from its data), a plan for more texts than the pilot's
is optimistic: its texts needed are then a lower bound.

**A stated design.** Without a pilot, the expected accuracies of the real arm and the control,
``p_real`` and ``p_control``, give the variance of one text's paired difference (1 or 0 correct, real minus
control) as ``p_real (1 - p_real) + p_control (1 - p_control)``, exact for independent errors. When the two
arms' errors on the same text are positively correlated (texts hard for both), the true variance is smaller:
this is then an upper bound and the texts needed are conservative. The design's
``se_hat`` is its test-sampling floor, ``sqrt(variance / (test_texts * seeds))`` (no training variance).

**Power** is :func:`auditkit.metrics.evidence.power` at the scaled standard errors: the probability that the
audit's verdict rule calls the cell selective. Test texts are ``round(texts * test_fraction)``, as a split
rounds them (one class at a time there, so an actual split may differ by a text per class).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from auditkit.errors import ConfigError
from auditkit.metrics import evidence
from auditkit.metrics.evidence import POWER
from auditkit.metrics.selectivity import draw_sd_from_note

MAX_TEXTS = 1_000_000
"""Where :func:`texts_needed` stops searching by default."""


class Pilot(NamedTuple):
    """The standard errors one selectivity row was judged with, and the size that gave them."""

    se: float
    """The interval's standard error, ``max(se_seeds, se_sampling)`` (a selectivity table's ``se``)."""
    sampling_se: float
    """Its test-sampling floor (``sampling_se``; NaN where the row had none)."""
    n_seeds: int
    """Seeds the row averaged."""
    test_texts: int
    """Distinct test texts of each seed's split."""
    draw_sd: float = 0.0
    """The control's sd over seeds and draws that a prediction-interval row adds (a random-model control,
    :data:`auditkit.metrics.selectivity.PREDICTION_RULE`): kept whole at every size, since neither texts nor
    seeds shrink the spread between draws (its test-sampling share would shrink: conservative)."""


def stated_design(p_real: float, p_control: float) -> Pilot:
    """The pilot of a stated design: one test text, one seed, its paired difference's variance
    ``p_real (1 - p_real) + p_control (1 - p_control)`` (independent errors; an upper bound when the arms'
    errors are positively correlated, see the module)."""
    for name, p in (("real accuracy", p_real), ("control accuracy", p_control)):
        if not 0 < p < 1:
            raise ConfigError(f"the {name} must be a proportion in (0, 1), got {p}: e.g. 0.75")
    se = math.sqrt(p_real * (1 - p_real) + p_control * (1 - p_control))
    return Pilot(se=se, sampling_se=se, n_seeds=1, test_texts=1)


def n_test_texts(texts: int, test_fraction: float) -> int:
    """Distinct test texts of one split of ``texts`` texts (``round(texts * test_fraction)``)."""
    return int(round(texts * test_fraction))


def scaled(pilot: Pilot, texts: int, seeds: int, *, test_fraction: float) -> tuple[float, float]:
    """``(se, sampling_se)`` of a design with ``texts`` texts and ``seeds`` seeds, scaled from ``pilot`` as
    ``1 / sqrt(test_texts * seeds)`` (the module's assumption); infinite with no test text."""
    n_test = n_test_texts(texts, test_fraction)
    if n_test < 1:
        return math.inf, math.inf
    factor = math.sqrt(pilot.test_texts * pilot.n_seeds / (n_test * seeds))
    if pilot.draw_sd > 0:
        mean_se = math.sqrt(max(pilot.se**2 - pilot.draw_sd**2, 0.0))
        return math.hypot(mean_se * factor, pilot.draw_sd), pilot.sampling_se * factor
    return pilot.se * factor, pilot.sampling_se * factor


def check_effect(effect: float, threshold: float) -> None:
    """The verdict needs a mean of at least ``threshold``: an effect at or below it is never called selective
    however many texts an audit has (its power then falls with more texts), so there is nothing to plan."""
    if not effect > threshold:
        raise ConfigError(
            f"the effect must be above the verdict's threshold {threshold:g}, got {effect:g}: a mean "
            f"selectivity below {threshold:g} is never called selective; ask for e.g. 0.10"
        )


def power_at(
    pilot: Pilot,
    texts: int,
    seeds: int,
    effect: float,
    *,
    test_fraction: float,
    threshold: float = 0.05,
    confidence: float = 0.95,
) -> float:
    """Probability that an audit of ``texts`` texts and ``seeds`` seeds calls a cell of true selectivity
    ``effect`` selective, with the pilot's standard errors scaled to it (0 with no test text; NaN where the
    pilot has no standard error)."""
    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    se, floor = scaled(pilot, texts, seeds, test_fraction=test_fraction)
    if se == math.inf:
        return 0.0
    return evidence.power(effect, se, floor, seeds, threshold=threshold, confidence=confidence)


def texts_needed(
    pilot: Pilot,
    effect: float,
    power: float = POWER,
    *,
    seeds: int,
    test_fraction: float,
    max_texts: int = MAX_TEXTS,
    threshold: float = 0.05,
    confidence: float = 0.95,
) -> int | None:
    """Smallest number of distinct texts whose audit at ``seeds`` seeds reaches ``power`` against a true
    selectivity ``effect`` (None when ``max_texts`` does not; NaN pilots give None too).

    Bisection over whole numbers: with ``effect`` above ``threshold`` the power never falls as the test
    texts grow (each point of :func:`~auditkit.metrics.evidence.power`'s chi-square grid is
    ``Phi(min(effect / se - c, (effect - threshold) / se))``, falling in ``se``)."""
    if not 0 < power < 1:
        raise ConfigError(f"the power must be in (0, 1), got {power}: e.g. 0.8")
    check_effect(effect, threshold)
    kw = dict(seeds=seeds, effect=effect, test_fraction=test_fraction, threshold=threshold, confidence=confidence)
    if not power_at(pilot, texts=max_texts, **kw) >= power:  # NaN too
        return None
    lo, hi = 0, max_texts  # power(lo) < target <= power(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power_at(pilot, texts=mid, **kw) >= power:
            hi = mid
        else:
            lo = mid
    return hi


PLAN_COLUMNS = ("method", "control", "selectivity", "verdict", "mde", "power", "texts_needed")
"""What :func:`plan_table` gives per selectivity row: the pilot's selectivity and verdict, its minimum
detectable effect at its own size, the power at the asked effect at its own size, and the texts needed (at
the planned seeds) for the asked power (None: beyond ``max_texts``, or a row that cannot be planned)."""


def plan_table(
    selectivity: pd.DataFrame,
    *,
    metric: str,
    texts: int,
    test_fraction: float,
    effect: float,
    power: float = POWER,
    seeds: int | None = None,
    plan_fraction: float | None = None,
    method: str | None = None,
    control: str | None = None,
    max_texts: int = MAX_TEXTS,
    threshold: float = 0.05,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """:data:`PLAN_COLUMNS` for each (method, control) row of ``metric`` in a pilot's selectivity table (its
    columns ``se``, ``sampling_se``, ``n_seeds``), whose audit had ``texts`` distinct texts split at
    ``test_fraction``; planned at ``seeds`` seeds (default: each row's own) and ``plan_fraction`` (default: the
    pilot's). ``method``/``control`` keep only that row's method or control. A row of a metric with no better
    direction, or with no standard error, has NaN MDE and power and no texts needed.

    Raises :class:`ConfigError` naming the choices when ``metric``, ``method`` or ``control`` is not in the
    table, or when ``effect`` or ``power`` cannot be planned for."""
    if not 0 < power < 1:
        raise ConfigError(f"the power must be in (0, 1), got {power}: e.g. 0.8")
    check_effect(effect, threshold)
    rows = (
        selectivity
        if "se" in selectivity.columns
        else evidence.evidence_columns(selectivity, threshold=threshold, confidence=confidence)
    )  # a table saved before the evidence columns
    for name, value in (("metric", metric), ("method", method), ("control", control)):
        if value is not None and value not in set(rows[name]):
            known = ", ".join(dict.fromkeys(rows[name].astype(str))) or "none"
            where = "this audit" if name == "metric" else f"this audit's {metric} rows"
            raise ConfigError(f"no {name} {value!r} in {where}: choose one of {known}")
        if value is not None:
            rows = rows[rows[name] == value]
    pilot_test = n_test_texts(texts, test_fraction)
    fraction = test_fraction if plan_fraction is None else plan_fraction
    out = []
    for r in rows.itertuples(index=False):
        n = int(r.n_seeds)
        pilot = Pilot(
            se=float(r.se),
            sampling_se=float(getattr(r, "sampling_se", math.nan)),
            n_seeds=n,
            test_texts=pilot_test,
            draw_sd=draw_sd_from_note(getattr(r, "note", "")),
        )
        plannable = r.verdict not in evidence.UNDIRECTED and pilot.se > 0 and n >= 1
        kw = dict(test_fraction=test_fraction, threshold=threshold, confidence=confidence)
        mde = (
            evidence.min_detectable_effect(pilot.se, pilot.sampling_se, n, threshold=threshold, confidence=confidence)
            if plannable
            else math.nan
        )
        out.append(
            dict(
                method=r.method,
                control=r.control,
                selectivity=float(r.selectivity),
                verdict=r.verdict,
                mde=mde,
                power=power_at(pilot, texts, n, effect, **kw) if plannable else math.nan,
                texts_needed=texts_needed(
                    pilot,
                    effect,
                    power,
                    seeds=seeds or n,
                    test_fraction=fraction,
                    max_texts=max_texts,
                    threshold=threshold,
                    confidence=confidence,
                )
                if plannable
                else None,
            )
        )
    return pd.DataFrame(out, columns=list(PLAN_COLUMNS))
