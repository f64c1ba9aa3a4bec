"""bench/sae_eval_offsets.py: the optional SAEBench column fails fast without sae_bench, and its variance
references say what they claim (about zero, and SAEBench's total variance E||x||^2 - (E||x||^2 / D)^2)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "sae_eval_offsets.py"


@pytest.fixture(scope="module")
def offsets():
    spec = importlib.util.spec_from_file_location("sae_eval_offsets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_saebench_flag_without_sae_bench_is_one_error_line_exit_2(offsets, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sae_bench", None)  # not importable, whatever is installed
    monkeypatch.setattr(sys, "argv", ["sae_eval_offsets.py", "--saebench"])
    with pytest.raises(SystemExit) as exit_:
        offsets.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --saebench")


class _Constant:
    """An 'SAE' whose reconstruction is one fixed vector."""

    def __init__(self, out_D: torch.Tensor) -> None:
        self.out_D = out_D

    def encode(self, x_ND: torch.Tensor) -> torch.Tensor:
        return x_ND

    def decode(self, z_ND: torch.Tensor) -> torch.Tensor:
        return self.out_D.expand_as(z_ND)


def test_variance_references_credit_the_mean_about_zero_but_not_about_the_mean(offsets):
    g = torch.Generator().manual_seed(0)
    x_ND = 3.0 + torch.randn(4000, 64, generator=g)  # E||x||^2 = 640, variance about the mean 64
    # Reconstructing every token by the data's mean explains none of the variance about the mean, yet
    # 0.9 of the second moment about zero; SAEBench's total variance is neither.
    ref = offsets._variance_references(_Constant(x_ND.mean(0)), x_ND)
    sq = float(x_ND.double().pow(2).sum(-1).mean())
    resid = float((x_ND.double() - x_ND.double().mean(0)).pow(2).sum(-1).mean())
    assert ref["ev_about_zero"] == pytest.approx(0.9, abs=0.01)
    assert ref["ev_saebench_formula"] == pytest.approx(1 - resid / (sq - (sq / 64) ** 2), rel=1e-9)
    assert 0.5 < ref["ev_saebench_formula"] < ref["ev_about_zero"]
