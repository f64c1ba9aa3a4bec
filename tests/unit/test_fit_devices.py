"""Every fit runs on its input's device: no tensor a fit builds is left on the default device.

There is no GPU in CI, so a wrong device is made visible on the CPU: :class:`MetaDefault` sends every tensor
that auditkit's own code constructs *without naming a device* (``torch.zeros(...)``, ``torch.eye(...)``,
``torch.rand(..., generator=...)``) to the ``meta`` device, which holds no data and refuses to mix with CPU
tensors. A fit on CPU inputs then either raises (what a fit that ignores its input's device does on a GPU) or,
when every tensor follows its input, gives exactly the numbers of a normal run. Torch's and sae-lens's own
internals are left alone (only calls made from ``auditkit/`` are redirected).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_row_per_text  # an ActivationSet and its TokenBatch, shared by the probe-stage tests
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

import auditkit
from auditkit.methods.probes import make_probe
from auditkit.methods.probes.mdl import online_codelength
from auditkit.methods.probes.sparse import sparse_probe
from auditkit.methods.sae.baselines import BASELINE_KINDS

pytestmark = pytest.mark.usefixtures("one_thread")

PACKAGE = str(Path(auditkit.__file__).resolve().parent)


class MetaDefault(TorchFunctionMode):
    """Inside ``with MetaDefault() as mode:``, a tensor constructor called from auditkit's code with no
    ``device=`` builds a meta tensor; ``mode.undeviced`` lists each such call (function, file, line)."""

    def __init__(self) -> None:
        super().__init__()
        self.undeviced: list[tuple[str, str, int]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get("device") is None:
            caller = sys._getframe(1).f_code
            if str(Path(caller.co_filename).resolve()).startswith(PACKAGE):
                self.undeviced.append((func.__name__, Path(caller.co_filename).name, sys._getframe(1).f_lineno))
                kwargs = {**kwargs, "device": "meta"}
        return func(*args, **kwargs)


def _on_meta_default(run):
    """``run()`` under :class:`MetaDefault`; fails naming every constructor that did not say its device."""
    mode = MetaDefault()
    try:
        with mode:
            out = run()
    except (RuntimeError, IndexError, NotImplementedError) as err:
        pytest.fail(
            f"a fit left a tensor on the default device: {err}; constructors without a device: {mode.undeviced}"
        )
    assert mode.undeviced == [], mode.undeviced
    return out


def _problems(n: int = 120, d: int = 6, n_classes: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    W = torch.randn(d, n_classes, generator=g, dtype=torch.float64)
    y = (X @ W + 0.5 * torch.randn(n, n_classes, generator=g, dtype=torch.float64)).argmax(1)
    y_SN = torch.stack([y, y[torch.randperm(n, generator=g)]])
    train_SN = torch.rand(2, n, generator=g) < 0.7
    return X, y_SN, train_SN


FAST = {
    "logistic": {},
    "mass-mean": {},
    "lda": {},
    "low-rank": dict(rank=2),
    "mlp": dict(epochs=3, batch_size=32, hidden=8),
}


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("kind", sorted(FAST))
def test_dense_probe_fits_build_every_tensor_on_the_input_device(kind: str, n_classes: int) -> None:
    X, y_SN, train_SN = _problems(n_classes=n_classes)
    fit = {"problem_keys": ["a", "b"]} if kind == "mlp" else {}
    ref = make_probe(kind, **FAST[kind]).fit(X, y_SN, train_SN, n_classes, **fit)
    probe = _on_meta_default(lambda: make_probe(kind, **FAST[kind]).fit(X, y_SN, train_SN, n_classes, **fit))
    torch.testing.assert_close(probe.predict_proba(X), ref.predict_proba(X), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_whitened_and_unwhitened_logistic_and_mlp_on_the_input_device(kind: str) -> None:
    """The whitening preconditioner (logistic) and minibatch order (MLP) on meta-default too."""
    X, y_SN, train_SN = _problems(n=80, d=4)
    hp = dict(precondition=False) if kind == "logistic" else dict(epochs=2, batch_size=None, hidden=4)
    ref = make_probe(kind, **hp).fit(X, y_SN, train_SN, 2)
    probe = _on_meta_default(lambda: make_probe(kind, **hp).fit(X, y_SN, train_SN, 2))
    torch.testing.assert_close(probe.predict_proba(X), ref.predict_proba(X), rtol=0, atol=0)


def _values(row: dict) -> tuple:
    return row["problem"], row["k"], row["metric"], row["value"]


def test_k_sparse_probing_builds_every_tensor_on_the_input_device() -> None:
    X, y_SN, train_SN = _problems(d=8, n_classes=3)
    ref = sparse_probe(X, y_SN, train_SN, 3, ks=(1, 3))
    res = _on_meta_default(lambda: sparse_probe(X, y_SN, train_SN, 3, ks=(1, 3)))
    assert [_values(r) for r in res.rows] == [_values(r) for r in ref.rows]
    assert all(np.array_equal(res.dims[k], ref.dims[k]) for k in ref.dims)


@pytest.mark.parametrize("groups", [False, True])
def test_the_online_code_builds_every_tensor_on_the_input_device(groups: bool) -> None:
    X, y_SN, train_SN = _problems(n=160)
    groups_N = np.arange(160) // 2 if groups else None

    def fit(X, y, train, n_classes, keys):
        return make_probe("logistic").fit(X, y, train, n_classes)

    def run():
        return online_codelength(
            fit, X, y_SN, train_SN, 2, schedule=(0.1, 0.3, 1.0), order_seeds=[0, 0], groups_N=groups_N
        )

    ref, code = run(), _on_meta_default(run)
    torch.testing.assert_close(code.codelength_S, ref.codelength_S, rtol=0, atol=0)
    assert all(np.array_equal(a, b) for a, b in zip(code.block_bits, ref.block_bits))


def _sae_rows(n: int = 256, d: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g) + 2


@pytest.mark.parametrize("architecture", ["topk", "standard"])
def test_sae_training_builds_every_tensor_on_the_training_device(architecture: str) -> None:
    from auditkit.methods.sae.metrics import encode_decode
    from auditkit.methods.sae.train import SAEConfig, train_sae

    X = _sae_rows()
    cfg = SAEConfig(architecture=architecture, width=16, k=4, training_tokens=2_048, batch_size=100, progress=False)
    ref = train_sae(X, cfg, seed=0)
    sae = _on_meta_default(lambda: train_sae(X, cfg, seed=0))
    for name, tensor in ref.state_dict().items():
        torch.testing.assert_close(sae.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    x_hat, _ = _on_meta_default(lambda: encode_decode(sae, X))
    torch.testing.assert_close(x_hat, encode_decode(ref, X)[0], rtol=0, atol=0)


@pytest.mark.parametrize("kind", list(BASELINE_KINDS))
def test_sae_baselines_build_every_tensor_on_the_training_device(kind: str) -> None:
    from auditkit.methods.sae.baselines import baseline_sae
    from auditkit.methods.sae.train import SAEConfig, train_sae

    X = _sae_rows()
    cfg = SAEConfig(width=16, k=4, training_tokens=1_024, batch_size=100, progress=False)
    trained = train_sae(X, cfg, seed=0)
    ref = baseline_sae(kind, X, cfg, seed=1, trained=trained)
    base = _on_meta_default(lambda: baseline_sae(kind, X, cfg, seed=1, trained=trained))
    assert str(base.W_dec.device) == cfg.device == "cpu"
    for name, tensor in ref.state_dict().items():
        torch.testing.assert_close(base.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


def test_sae_latent_probes_fit_on_the_latents_device() -> None:
    from auditkit.methods.sae.metrics import sparse_probe_records

    X, y_SN, train_SN = _problems(n=120, d=10)
    labels_N, test_N = y_SN[0], ~train_SN[0]
    ref = sparse_probe_records(X, labels_N, test_N, ks=(1, 3))
    out = _on_meta_default(lambda: sparse_probe_records(X, labels_N, test_N, ks=(1, 3)))
    assert [(r["metric"], r["value"]) for r in out] == [(r["metric"], r["value"]) for r in ref]


@pytest.mark.parametrize("kind", ["pca", "identity"])
def test_the_unlearned_baselines_are_built_on_the_training_device(kind: str) -> None:
    """Nothing to draw or train: the whole dictionary can be built on ``meta``, where it must land."""
    import dataclasses

    from auditkit.methods.sae.baselines import baseline_sae
    from auditkit.methods.sae.train import SAEConfig

    cfg = dataclasses.replace(SAEConfig(width=16, k=4, progress=False), device="meta")
    base = baseline_sae(kind, _sae_rows(), cfg, seed=0, trained=None)
    assert base.W_dec.device.type == base.W_enc.device.type == base.b_dec.device.type == "meta"


class _Uniform:
    """A stand-in for a fitted stack: uniform probabilities, on the CPU."""

    def __init__(self, n_problems: int, n_classes: int) -> None:
        self.shape = (n_problems, n_classes)
        self.complexity_ = {"n_params": 0}

    def predict_proba(self, X_ND: torch.Tensor) -> torch.Tensor:
        S, K = self.shape
        return torch.full((S, X_ND.shape[0], K), 1 / K, device="cpu")


def test_the_audit_fits_every_probe_stack_on_its_device_and_scores_on_the_cpu(monkeypatch) -> None:
    from auditkit.audit import probe as audit_probe
    from auditkit.audit.arms import Arm

    n = 40
    acts, batch = one_row_per_text(torch.randn(n, 4, generator=torch.Generator().manual_seed(0)), np.arange(n) % 2)
    shuffled = acts.replace(labels_N=np.roll(acts.labels_N, 1))
    arms = [
        Arm(c, s, a, batch, lambda: None) for c, a in (("none", acts), ("shuffled-labels", shuffled)) for s in (0, 1)
    ]
    seen = []

    def fit_stack(kind, hp, X_ND, y_SN, train_SN, n_classes, keys):
        seen.append({X_ND.device.type, y_SN.device.type, train_SN.device.type})
        return _Uniform(y_SN.shape[0], n_classes)

    monkeypatch.setattr(audit_probe, "fit_stack", fit_stack)
    rows, info = audit_probe.probe_rows(arms, ("logistic", "mlp"), device="meta")
    assert seen == [{"meta"}, {"meta"}]  # one stack per kind: features, labels and masks on the audit's device
    assert info["fit_device"] == "meta"
    accuracy = rows.query("metric == 'accuracy'")["value"]
    assert len(accuracy) == 8 and bool(accuracy.between(0, 1).all())  # 2 kinds x 4 arms, scored on the CPU
