"""Devices and dtypes of the forward passes, and the executor flags: what runs, what is recorded, what is cached
apart, and bad input refused in one line before any compute."""

from __future__ import annotations

import json

import pytest
import torch
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit import data
from auditkit.cache import CacheEntry
from auditkit.extract import ExtractConfig, cache_request, extract
from auditkit.models import ModelSpec, load_model, resolve_device
from auditkit.sweep import ray_executor

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bfloat16_activations_are_float32_close_to_float32_and_never_served_for_it(tmp_path):
    f32, bf16 = (load_model(ModelSpec(name="tiny-gpt2", seed=0, dtype=d)) for d in ("float32", "bfloat16"))
    assert (bf16.provenance.dtype, bf16.provenance.device) == ("bfloat16", "cpu")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    tok = f32.model.tokenizer
    ds = data.from_lists(
        "toy", [f"text {i} says {'more ' * (i % 3)}here" for i in range(16)], [i % 2 for i in range(16)]
    )
    batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=32)
    cfg = ExtractConfig(hook="blocks.1.hook_resid_pre", positions="all", progress=False)
    entries = {m.provenance.dtype: CacheEntry(tmp_path, cache_request(m.provenance, batch, cfg)) for m in (f32, bf16)}
    assert entries["float32"].key != entries["bfloat16"].key  # a bfloat16 pass is its own request
    a = extract(f32.model, batch, cfg, cache=entries["float32"])
    b = extract(bf16.model, batch, cfg, cache=entries["bfloat16"])
    assert a.acts_ND.dtype == b.acts_ND.dtype == torch.float32  # fits always see float32
    rel = float((a.acts_ND - b.acts_ND).norm() / a.acts_ND.norm())
    assert 0 < rel < 0.05, rel  # bfloat16 rounding: slightly different, not another model
    # the float32 entry is still float32's: read back, it equals the float32 pass, not the bfloat16 one
    torch.testing.assert_close(entries["float32"].load()["acts"], a.acts_ND, atol=0, rtol=0)
    torch.testing.assert_close(CacheEntry(tmp_path, entries["bfloat16"].request).load()["acts"], b.acts_ND)


def test_an_audit_records_the_device_and_dtype_it_ran_with(tmp_path, yes_no_table):
    table = yes_no_table(tmp_path / "t.csv", n=60)
    args = [
        "audit",
        "--model",
        "tiny-gpt2",
        "--dataset",
        f"table:{table}",
        "--controls",
        "shuffled-labels",
        "--probes",
        "logistic",
        "--seeds",
        "0,1",
        "--device",
        "auto",
        "--dtype",
        "bfloat16",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["provenance"]["dtype"] == "bfloat16"
    assert run["provenance"]["device"] == resolve_device("auto") != "auto"  # what ran, not what was asked
    assert "--dtype bfloat16" in run["command"] and "--device auto" in run["command"]


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


@pytest.mark.parametrize(
    "command, args, needle",
    [
        pytest.param("sweep", ["--device", "cuda"], "no CUDA GPU", marks=NO_CUDA),
        pytest.param("audit", ["--device", "cuda"], "no CUDA GPU", marks=NO_CUDA),
        ("sweep", ["--device", "tpu"], "device 'tpu' is unknown"),
        ("audit", ["--dtype", "float8"], "'--dtype'"),
        ("sweep", ["--executor", "spark"], "'--executor'"),
        ("sweep", ["--ray-address", "auto"], "add --executor ray"),
        ("sweep", ["--executor", "ray", "--ray-cpus", "0"], "--ray-cpus must be > 0"),
        ("sweep", ["--executor", "ray", "<no ray>"], "pip install 'auditkit[ray]'"),
    ],
)
def test_bad_device_dtype_or_executor_is_one_line_before_any_compute(
    tmp_path, yes_no_table, monkeypatch, command, args, needle
):
    table = yes_no_table(tmp_path / "t.csv", n=40)
    if "<no ray>" in args:  # the core install, without the optional extra
        monkeypatch.setattr(ray_executor, "ray", None)
        args = [a for a in args if a != "<no ray>"]
    data_flag = "--dataset" if command == "audit" else "--datasets"
    common = [
        command,
        "--model",
        "tiny-gpt2",
        data_flag,
        f"table:{table}",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
    ]
    result = CliRunner().invoke(app, [*common, *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]  # no output, no cache, no temporary folder


def test_every_method_records_the_device_its_fits_ran_on(tmp_path, yes_no_table):
    """Probes, SAEs and the pursuit method's probe/SAE dictionaries fit where the model ran (provenance.device,
    ``auto`` resolved: on a machine with a GPU this runs them all there); the pursuit method's sparse coders
    run on the CPU and say so."""
    from auditkit.audit.config import AuditConfig
    from auditkit.audit.options import PursuitAuditOptions, SAEAuditOptions
    from auditkit.audit.run import run_audit

    cfg = AuditConfig(
        dataset=f"table:{yes_no_table(tmp_path / 't.csv', n=40)}",
        hook="blocks.0.hook_resid_post",
        seeds=(0,),
        methods=("probe", "sae", "pursuit"),
        controls=("shuffled-labels",),
        probes=("logistic",),
        use_cache=False,
        progress=False,
        model=ModelSpec(name="tiny-gpt2", seed=0, device="auto"),
        sae=SAEAuditOptions(width=16, k=4, training_tokens=512, batch_size=64, splice_texts=4),
        pursuit=PursuitAuditOptions(dictionary="sae", ks=(1, 2), sae_expansion=1.0, sae_k=2, sae_tokens=512),
    )
    result = run_audit(cfg)
    ran = result.provenance.device
    assert ran == resolve_device("auto") != "auto"
    assert {m: info.extras["fit_device"] for m, info in result.method_info.items()} == dict.fromkeys(cfg.methods, ran)
    assert result.method_info["pursuit"].extras["solver_device"] == "cpu"
