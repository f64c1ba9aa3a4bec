"""Reading versus writing directions on planted feature bases (activation level, no transformer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import planted_features  # known-answer features, shared by the steering tests

from auditkit.errors import ConfigError, DataError
from auditkit.models import ModelSpec
from auditkit.steering.directions import (
    class_gaps,
    dual_basis,
    fit_readers,
    off_on,
    reader_geometry,
    reading_auroc,
    readout_shifts,
    unit,
)
from auditkit.steering.effects import label_logodds, step_vectors
from auditkit.steering.run import SteeringConfig
from auditkit.steering.summary import RANDOM, comparison_matrix, t_interval, verdicts

K = 3


pytestmark = pytest.mark.usefixtures("one_thread")


def _planted(cosine: float, seed: int = 0):
    X, z, F = planted_features(3000, 32, K, cosine=cosine, noise=0.3, seed=seed)
    is_test = (np.arange(len(z)) % 4 == 0)[None]
    readers = fit_readers(X, z, is_test)
    P = readers["logistic"]
    return X, z, F, is_test, readers, P, class_gaps(X, P, z, ~is_test)


def _ratios(P, V, gaps) -> list[float]:
    """Off-target over on-target readout shift when writing along each concept's direction in V."""
    return [off_on(readout_shifts(P, unit(V)[:, k], gaps)[0], k)[2] for k in range(K)]


@pytest.fixture(scope="module")
def skewed():
    return _planted(0.6)


@pytest.fixture(scope="module")
def orthogonal():
    return _planted(0.0)


def test_planted_basis_has_the_asked_geometry():
    _, _, F = planted_features(50, 16, 4, cosine=0.4, seed=1)
    gram = F @ F.T
    assert torch.allclose(gram, 0.6 * torch.eye(4, dtype=torch.float64) + 0.4, atol=1e-12)
    with pytest.raises(DataError, match="not attainable"):
        planted_features(10, 8, 3, cosine=-0.6)


def test_dual_basis_is_surgical_and_the_probe_transpose_is_not(skewed):
    X, z, F, is_test, _readers, P, gaps = skewed
    U = dual_basis(P)
    assert torch.allclose(P[0] @ U[0].T, torch.eye(K, dtype=torch.float64), atol=1e-8)  # P u_k = e_k
    assert max(_ratios(P, U, gaps)) < 1e-8
    assert min(_ratios(P, P, gaps)) > 0.15  # writing along the probe moves the other readouts too
    # The readers are far from orthogonal, which is what predicts the difference ...
    assert float(reader_geometry(P).max_offdiag_S[0]) > 0.2
    # ... and the dual basis, not the probe, recovers the planted writing directions f_k.
    cos_dual = (unit(U[0]) * F).sum(1)
    cos_probe = (unit(P[0]) * F).sum(1)
    assert bool((cos_dual > 0.93).all()) and bool((cos_probe < 0.87).all())
    # Reading is the probe's job: it reads every concept well, the dual less well or no better.
    auc = reading_auroc(X, P, z, is_test)
    assert bool((auc > 0.95).all())
    assert bool((reading_auroc(X, U, z, is_test) <= auc + 0.01).all())


def test_orthogonal_basis_makes_reading_and_writing_coincide(orthogonal):
    _, _, _, _, _, P, gaps = orthogonal
    U = dual_basis(P)
    assert bool(((unit(U[0]) * unit(P[0])).sum(1) > 0.99).all())
    assert max(_ratios(P, P, gaps)) < 0.08
    assert float(reader_geometry(P).condition_S[0]) < 1.2


def test_step_vectors_match_their_units(skewed):
    _, _, _, _, readers, P, gaps = skewed
    dirs = {**readers, "dual": dual_basis(P), "random": unit(torch.randn(1, K, 32, dtype=torch.float64))}
    alphas = (0.0, 0.5, 2.0)
    by_norm = step_vectors(dirs, P, gaps, alphas, "norm", mean_norm=10.0)
    for V in by_norm.values():
        assert torch.allclose(V.norm(dim=-1), torch.tensor([0.0, 5.0, 20.0], dtype=torch.float64).expand(1, K, 3))
    by_gap = step_vectors(dirs, P, gaps, alphas, "gap", mean_norm=10.0)
    for kind in ("logistic", "mass-mean", "lda", "dual"):
        moved = torch.einsum("scd,scad->sca", P, by_gap[kind])  # target readout shift per dose
        assert torch.allclose(moved, gaps[..., None] * torch.tensor(alphas, dtype=torch.float64), rtol=1e-6)
    assert torch.allclose(by_gap["random"].norm(dim=-1), by_gap["dual"].norm(dim=-1))
    with pytest.raises(ConfigError):
        step_vectors(dirs, P, gaps, alphas, "bogus", mean_norm=1.0)


def test_label_logodds_against_the_other_words():
    lp = torch.log(torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64))
    assert float(label_logodds(lp, 0)[0]) == pytest.approx(0.0)
    assert float(label_logodds(lp, 1)[0]) == pytest.approx(np.log(0.25 / 0.75))


def test_verdicts_name_the_best_reader_and_writer_with_paired_intervals():
    rows = []
    for seed in range(4):
        for kind, auc, write in (("logistic", 0.9, 0.2), ("lda", 0.85, 0.3), ("dual", 0.7, 0.8), ("random", 0.5, 0.0)):
            rows.append(
                dict(
                    arm="none",
                    direction=kind,
                    concept="a",
                    seed=seed,
                    alpha=np.nan,
                    metric="read_auroc",
                    value=auc + 0.01 * seed,
                )
            )
            for metric, value in (("later_selective", write), ("later_ratio", 1 - write)):
                rows.append(
                    dict(
                        arm="none",
                        direction=kind,
                        concept="a",
                        seed=seed,
                        alpha=1.0,
                        metric=metric,
                        value=value + 0.02 * (seed % 2),
                    )
                )
    v = verdicts(pd.DataFrame(rows), reference_alpha=1.0)
    assert (v["reads_best"]["best"], v["reads_best"]["runner_up"]) == ("logistic", "lda")
    assert v["reads_best"]["difference"][0] == pytest.approx(0.05)
    assert v["writes_best"]["best"] == "dual" and v["writes_best"]["difference"][1] > 0.4
    assert v["most_surgical"]["best"] == "dual"
    mean, lo, hi = t_interval(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0 and lo < 2.0 < hi


def test_comparison_matrix_sets_each_direction_against_random_and_the_control_arm():
    """A trained reader beats the random direction and the same reader in a control arm that reads nothing; a
    direction no better than the control arm's is not selective."""
    rows = []
    for seed in range(4):
        jitter = 0.01 * (seed % 2)
        for arm, kind, auc, write in (
            ("none", "logistic", 0.9, 0.6),
            ("none", "random", 0.5, 0.0),
            ("spectral-reinit", "logistic", 0.6, 0.6),
            ("spectral-reinit", "random", 0.5, 0.0),
        ):
            base = {"arm": arm, "direction": kind, "concept": "a", "seed": seed}
            rows.append(base | {"alpha": np.nan, "metric": "read_auroc", "value": auc + jitter})
            rows.append(base | {"alpha": 1.0, "metric": "later_selective", "value": write + jitter * (arm == "none")})
    table = comparison_matrix(pd.DataFrame(rows), reference_alpha=1.0, directions=("logistic", "dual"))
    cell = table.set_index(["metric", "comparison"])
    assert set(table["direction"]) == {"logistic"} and len(table) == 4  # no dual rows: none were written
    assert cell.loc[("read_auroc", RANDOM), "difference"] == pytest.approx(0.4)
    assert cell.loc[("read_auroc", RANDOM), "verdict"] == "selective"
    assert cell.loc[("read_auroc", RANDOM), "normalised"] == pytest.approx(0.4 / (1 - 0.505))
    assert cell.loc[("read_auroc", "spectral-reinit"), "verdict"] == "selective"
    writes = cell.loc[("later_selective", "spectral-reinit")]
    assert writes["difference"] == pytest.approx(0.005) and writes["verdict"] == "not selective"
    assert np.isnan(writes["normalised"])  # writing has no ceiling


@pytest.mark.parametrize(
    "bad",
    [
        dict(datasets=()),
        dict(template="no field"),
        dict(seeds=(0, 0)),
        dict(alphas=(0.0,)),
        dict(alphas=(-1.0, 1.0)),
        dict(reference_alpha=3.0),
        dict(positions="first"),
        dict(scale="logit"),
        dict(controls=("shuffled-labels",)),
        dict(n_eval=1),
        dict(test_fraction=1.0),
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        SteeringConfig(model=ModelSpec(name="tiny-gpt2"), **bad)
