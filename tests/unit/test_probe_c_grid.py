"""--probe-c-grid: each arm and seed chooses its C by cross-validation over its own training texts, the same
procedure for every arm; a weak signal spread over many dimensions gets a stronger penalty, a clean one a weaker."""

from __future__ import annotations

import numpy as np
import torch
from conftest import one_row_per_text  # an ActivationSet and its TokenBatch, shared by the probe-stage tests

from auditkit.audit.probe import choose_C
from auditkit.methods.text_baselines import fold_of_rows, length_proba

GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def _data(n: int, d: int, strength: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = ((strength * X[:, 0] + torch.randn(n, generator=gen, dtype=torch.float64)) > 0).long()
    return X, y


def _choose(X, y_SN, keys, groups=None):
    S, N = y_SN.shape
    train = torch.zeros(S, N, dtype=torch.bool)
    train[:, : int(0.75 * N)] = True
    groups_SN = np.tile(np.arange(N), (S, 1)) if groups is None else np.tile(groups, (S, 1))
    return choose_C("logistic", {"C": 1.0}, GRID, X, y_SN, train, 2, keys, groups_SN)


def test_a_weak_signal_in_many_dimensions_gets_a_stronger_penalty_than_a_clean_one():
    X, y = _data(400, 150, 0.5, 0)
    weak = _choose(X, y[None], ["real/0"])[0]
    X, y = _data(400, 3, 4.0, 1)
    clean = _choose(X, y[None], ["real/0"])[0]
    assert weak < 1.0 and clean >= 1.0 and weak < clean


def test_an_arms_choice_does_not_depend_on_the_other_arms_of_its_stack():
    X, y = _data(300, 40, 1.0, 2)
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(3))]
    alone = _choose(X, y[None], ["real/0"])
    stacked = _choose(X, torch.stack([shuffled, y]), ["shuffled-labels/0", "real/0"])
    assert stacked[1] == alone[0]


def test_rows_of_one_text_share_a_fold_and_texts_are_dealt_evenly():
    groups = np.repeat(np.arange(30), 4)  # 30 texts of 4 rows
    fold = fold_of_rows(groups, seed=0)
    assert all(len(set(fold[groups == t])) == 1 for t in range(30))
    assert np.bincount(fold[::4]).tolist() == [10, 10, 10]
    assert not np.array_equal(fold, fold_of_rows(groups, seed=1))  # seeded


def test_a_lexical_baseline_chooses_its_c_the_same_way():
    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 60, 200)]
    y = np.array([int(len(t) > 30) for t in texts])
    fixed = length_proba(texts[:150], y[:150], texts[150:], n_classes=2, C=1e-4)
    tuned = length_proba(texts[:150], y[:150], texts[150:], n_classes=2, C=1e-4, C_grid=GRID, groups=np.arange(150))
    accuracy = lambda p: float((p.argmax(1) == y[150:]).mean())
    assert accuracy(tuned) > accuracy(fixed)  # C = 1e-4 all but silences the length cue; the grid finds a larger C


def test_groups_of_different_sizes_fitted_at_different_precisions_are_put_together(monkeypatch):
    """Problems that chose different Cs are fitted in groups; with precision "auto" a small group may fit in float64
    and a large one in float32 (the embedded calibration's grid run stopped on exactly that)."""
    from auditkit.audit import probe as probe_module
    from auditkit.methods.probes import base

    X, y = _data(200, 20, 1.0, 4)
    S = 5
    y_SN = y.repeat(S, 1)
    train = torch.zeros(S, 200, dtype=torch.bool)
    train[:, :150] = True
    # 200 * (20 + S * 1) elements: one problem fits in float64, four exceed the limit set here and fit in float32
    monkeypatch.setattr(base, "FLOAT64_MAX_ELEMENTS", 200 * (20 + 2))
    chosen = np.array([0.01, 1.0, 1.0, 1.0, 1.0])
    proba, _ = probe_module._fit_chosen(
        "logistic", {"C": 1.0}, chosen, X.float(), y_SN, train, 2, [f"p{i}" for i in range(S)]
    )
    assert proba.shape == (S, 200, 2) and torch.isfinite(proba).all()


def test_a_lexical_grid_fit_prints_no_library_warning():
    """scikit-learn 1.9 warned twice on every cross-validated fit (a grid audit printed them per baseline and seed)."""
    import warnings

    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 60, 200)]
    y = np.array([int(len(t) > 30) for t in texts])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        length_proba(texts[:150], y[:150], texts[150:], n_classes=2, C=1.0, C_grid=GRID, groups=np.arange(150))


def test_the_draws_of_a_label_control_share_the_c_their_first_draw_chose(monkeypatch):
    """The draws of a label control are exchangeable, so one choice per arm and seed (on its first draw) serves
    them all: the cross-validation fits drop from every problem to the real arm and one draw per control and seed
    (6.6x -> 3.3x the default audit's logistic fits, 20x -> 3.1x on part of speech). Each chosen C is still the
    arm's own."""
    from auditkit.audit import probe as audit_probe
    from auditkit.audit.arms import Arm

    n, draws, seeds = 240, 4, (0, 1)
    X, y = _data(n, 30, 1.0, 5)
    rng = np.random.default_rng(0)
    acts, batch = one_row_per_text(X.float(), y.numpy(), level="sentence", positions="last")
    arms = [Arm("none", s, acts, batch, lambda: None) for s in seeds] + [
        Arm("shuffled-labels", s, acts.replace(labels_N=rng.permutation(acts.labels_N)), batch, lambda: None, draw=d)
        for s in seeds
        for d in range(draws)
    ]
    asked: list[list[str]] = []
    real_choose = audit_probe.choose_C

    def choose(kind, hp, grid, X_ND, y_SN, train_SN, n_classes, keys, groups_SN):
        asked.append(list(keys))
        return real_choose(kind, hp, grid, X_ND, y_SN, train_SN, n_classes, keys, groups_SN)

    monkeypatch.setattr(audit_probe, "choose_C", choose)
    rows, info = audit_probe.probe_rows(arms, ("logistic",), C_grid=GRID)
    assert len(asked) == 1 and len(asked[0]) == 2 * len(seeds)  # the real arm and one draw a seed, not all 10
    tally = info["C_chosen"]["logistic"]["shuffled-labels"]
    assert all(count % draws == 0 for count in tally.values()), tally  # a seed's draws share one C
    assert sum(tally.values()) == draws * len(seeds)
    assert rows.query("metric == 'accuracy'").groupby("control").size().to_dict() == {
        "none": len(seeds),
        "shuffled-labels": draws * len(seeds),
    }
