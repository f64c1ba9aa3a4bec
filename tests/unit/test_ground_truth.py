"""Ground-truth recovery scores (SynthSAEBench's MCC, F1 and uniqueness, through auditkit's wrapper) on planted
dictionaries whose answer is known."""

from __future__ import annotations

import pytest
import torch

from auditkit.metrics.ground_truth import GROUND_TRUTH_METRICS, ground_truth_scores
from auditkit.seeding import torch_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def _truth(G=24, D=12, N=600, seed=0):
    gen = torch_generator(seed)
    W = torch.randn(G, D, generator=gen)
    W = W / W.norm(dim=1, keepdim=True)
    acts = (torch.rand(N, G, generator=gen) < 0.1).float() * (1 + torch.rand(N, G, generator=gen))
    return W, acts, acts @ W


def test_the_true_dictionary_with_the_true_codes_scores_one_on_everything():
    W, acts, x = _truth()
    s = ground_truth_scores(acts, W, acts, W, x, x)
    assert all(s[m] == pytest.approx(1.0, abs=1e-6) for m in (*GROUND_TRUTH_METRICS, "explained_variance")), s
    assert s["l0"] == pytest.approx(float((acts > 0).sum(1).double().mean()))


def test_order_and_sign_of_the_atoms_do_not_matter():
    W, acts, x = _truth()
    perm = torch.randperm(W.shape[0], generator=torch_generator(1))
    signs = torch.where(torch.arange(W.shape[0]) % 2 == 0, 1.0, -1.0)[:, None]
    s = ground_truth_scores(acts[:, perm], W[perm] * signs, acts, W, x, x)
    assert s["mcc"] == pytest.approx(1.0, abs=1e-6) and s["f1"] == pytest.approx(1.0) and s["uniqueness"] == 1.0


def test_a_random_dictionary_scores_far_below_the_truth_and_a_signed_basis_at_most_half_unique():
    W, acts, x = _truth()
    R = torch.randn(W.shape[0], W.shape[1], generator=torch_generator(2))
    codes = torch.relu(x @ R.T)
    s = ground_truth_scores(codes, R, acts, W, x, codes @ R)
    assert s["mcc"] < 0.7 and s["f1"] < 0.6, s
    basis = torch.cat([torch.eye(W.shape[1]), -torch.eye(W.shape[1])])
    signed = ground_truth_scores(torch.zeros(x.shape[0], basis.shape[0]), basis, acts, W, x, x)
    assert signed["uniqueness"] <= 0.5
