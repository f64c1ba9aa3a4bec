"""Dictionaries from SAEs, embeddings and probes; Gaussian and spectrum-matched controls."""

from __future__ import annotations

import pytest
import torch

from auditkit.errors import DataError
from auditkit.methods.pursuit.dictionaries import (
    CONTROLS,
    from_embedding,
    from_matrix,
    from_probes,
    from_sae,
    from_unembedding,
    gaussian_control,
    spectrum_matched_control,
)
from auditkit.methods.pursuit.greedy import omp
from auditkit.metrics.sparse_coding import fvu
from auditkit.seeding import torch_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def _anisotropic(F: int, D: int, seed: int) -> torch.Tensor:
    """Rows with a decaying spectrum, like a real decoder's (not isotropic like a Gaussian one)."""
    g = torch_generator(seed)
    return torch.randn(F, D, generator=g) * torch.linspace(3.0, 0.2, D)[None, :] + 0.1


def _unit(W: torch.Tensor) -> bool:
    return bool(torch.allclose(W.norm(dim=1), torch.ones(W.shape[0], dtype=W.dtype), atol=1e-5))


def test_sae_decoder_rows_are_normalised_and_norms_kept() -> None:
    import sae_lens

    sae = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=16, d_sae=40))
    dic = from_sae(sae)
    assert dic.W_FD.shape == (40, 16) and _unit(dic.W_FD) and dic.source == "sae"
    torch.testing.assert_close(dic.W_FD * dic.row_norms_F[:, None], sae.W_dec.detach())
    with pytest.raises(DataError, match="W_dec"):
        from_sae(object())


def test_embedding_unembedding_and_probe_dictionaries(tiny_gpt2) -> None:
    from auditkit.extract import embedding_matrices

    model = tiny_gpt2.model
    mats = embedding_matrices(model)
    embed, unembed = from_embedding(mats.W_E_VD), from_unembedding(mats.W_U_DV)
    V, D = mats.W_E_VD.shape
    assert embed.W_FD.shape == (V, D) and unembed.W_FD.shape == (V, D)
    assert _unit(embed.W_FD) and _unit(unembed.W_FD)
    # Atom v of the unembedding dictionary is the direction that raises token v's logit.
    torch.testing.assert_close(unembed.W_FD[5], mats.W_U_DV[:, 5] / mats.W_U_DV[:, 5].norm())
    probe = from_probes(torch.randn(3, D))
    assert probe.n_atoms == 3 and probe.source == "probe"


def test_zero_rows_and_nonfinite_values_raise() -> None:
    W = torch.randn(5, 4)
    W[2] = 0
    with pytest.raises(DataError, match="row 2 has zero norm"):
        from_matrix(W)
    with pytest.raises(DataError, match="NaN"):
        from_matrix(torch.full((2, 2), float("nan")))


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_controls_keep_shape_and_unit_rows_and_are_seeded(name: str) -> None:
    real = from_matrix(_anisotropic(200, 40, 0))
    a, b, c = CONTROLS[name](real, 0), CONTROLS[name](real, 0), CONTROLS[name](real, 1)
    assert a.W_FD.shape == real.W_FD.shape and _unit(a.W_FD)
    assert a.control == name and a.seed == 0 and a.source == real.source
    torch.testing.assert_close(a.W_FD, b.W_FD)
    assert not torch.allclose(a.W_FD, c.W_FD)


def test_spectrum_matched_control_keeps_the_spectrum_not_the_directions() -> None:
    real = from_matrix(_anisotropic(400, 40, 2))
    ctrl = spectrum_matched_control(real, 0)
    gauss = gaussian_control(real, 0)
    s_real = torch.linalg.svdvals(real.W_FD.double())
    s_ctrl = torch.linalg.svdvals(ctrl.W_FD.double())
    s_gauss = torch.linalg.svdvals(gauss.W_FD.double())
    # Row normalisation after matching moves the singular values only a little; a Gaussian
    # dictionary of the same shape has a far flatter spectrum.
    assert float(((s_ctrl - s_real).abs() / s_real).max()) < 0.1
    assert float(((s_gauss - s_real).abs() / s_real).max()) > 1.0
    # Different directions: the top right-singular vectors are nearly unrelated.
    v_real = torch.linalg.svd(real.W_FD.double(), full_matrices=False).Vh[0]
    v_ctrl = torch.linalg.svd(ctrl.W_FD.double(), full_matrices=False).Vh[0]
    assert abs(float(v_real @ v_ctrl)) < 0.7


def test_random_dictionary_controls_fail_to_reconstruct_planted_signals() -> None:
    """The conclusion: signals built from the real atoms are reconstructed by pursuit with those
    atoms, and not by pursuit with either control at the same L0."""
    real = from_matrix(torch.randn(512, 256, generator=torch_generator(3)))
    g = torch_generator(4)
    support = torch.rand(300, 512, generator=g).argsort(1)[:, :5]
    codes = torch.zeros(300, 512).scatter_(1, support, 1 + torch.rand(300, 5, generator=g))
    X = codes @ real.W_FD + 0.01 * torch.randn(300, 256, generator=g)
    arms = [real, *(control(real, 0) for control in CONTROLS.values())]
    fvus = {d.control: fvu(X, omp(X, d.W_FD, 5).codes_NF @ d.W_FD) for d in arms}
    assert fvus["none"] < 0.01
    assert fvus["gaussian"] > 0.5 and fvus["spectrum-matched"] > 0.5
