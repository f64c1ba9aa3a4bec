"""The activation cache: keyed by the whole request, atomic, resumable after SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from auditkit import data, extract as extract_mod
from auditkit.cache import CacheEntry, request_key
from auditkit.errors import CacheError
from auditkit.extract import ExtractConfig, cache_request, extract
from auditkit.models import ModelSpec, load_model

N_TEXTS, CHUNK = 40, 8


def _setup():
    loaded = load_model(ModelSpec(name="tiny-gpt2", seed=0))
    texts = [f"example number {i} says {'yes' if i % 2 else 'no'}" for i in range(N_TEXTS)]
    ds = data.from_lists("toy", texts, [i % 2 for i in range(N_TEXTS)])
    tok = loaded.model.tokenizer
    batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=64)
    cfg = ExtractConfig(hook="blocks.1.hook_resid_pre", positions="all", chunk_size=CHUNK, batch_size=4, progress=False)
    return loaded, batch, cfg


def test_key_depends_on_every_field():
    base = {"model": "m", "hook": "h", "dataset": "d"}
    assert request_key(base) == request_key(dict(reversed(list(base.items()))))
    assert len({request_key({**base, k: "other"}) for k in base} | {request_key(base)}) == 4


def test_second_run_loads_instead_of_computing(tmp_path, monkeypatch):
    loaded, batch, cfg = _setup()
    entry = CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg))
    first = extract(loaded.model, batch, cfg, cache=entry)
    assert (entry.path / "meta.json").is_file() and not entry.partial.exists()

    def boom(*a, **k):
        raise AssertionError("recomputed a cached entry")

    monkeypatch.setattr(extract_mod, "_extract_examples", boom)
    again = extract(loaded.model, batch, cfg, cache=CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg)))
    torch.testing.assert_close(first.acts_ND, again.acts_ND)


def test_other_weights_get_another_key():
    loaded, batch, cfg = _setup()
    other = load_model(ModelSpec(name="tiny-gpt2", seed=1))
    assert request_key(cache_request(loaded.provenance, batch, cfg)) != request_key(
        cache_request(other.provenance, batch, cfg)
    )


def test_meta_mismatch_raises(tmp_path):
    loaded, batch, cfg = _setup()
    entry = CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg))
    extract(loaded.model, batch, cfg, cache=entry)
    meta = entry.path / "meta.json"
    meta.write_text(json.dumps({"request": {"model": "something else"}}))
    with pytest.raises(CacheError, match="another request"):
        extract(loaded.model, batch, cfg, cache=entry)


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from auditkit.cache import CacheEntry
    from test_cache import _setup
    from auditkit.extract import cache_request, extract

    saved = []
    original = CacheEntry.save_chunk

    def save_then_die(self, index, tensors):
        original(self, index, tensors)
        saved.append(index)
        if len(saved) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    CacheEntry.save_chunk = save_then_die
    loaded, batch, cfg = _setup()
    extract(loaded.model, batch, cfg, cache=CacheEntry({root!r}, cache_request(loaded.provenance, batch, cfg)))
    """
)


def test_sigkill_leaves_no_entry_and_rerun_computes_only_the_rest(tmp_path, monkeypatch):
    from pathlib import Path

    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    loaded, batch, cfg = _setup()
    entry = CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg))
    assert not entry.path.exists(), "a killed run left a finished-looking entry"
    assert sorted(p.name for p in entry.partial.glob("chunk-*")) == ["chunk-00000.safetensors", "chunk-00001.safetensors"]
    assert not list(entry.partial.glob(".*")), "a killed run left a temporary file"

    computed = []
    original = extract_mod._extract_examples

    def counting(model, batch, plan, cfg, lo, hi, bar):
        computed.append(lo)
        return original(model, batch, plan, cfg, lo, hi, bar)

    monkeypatch.setattr(extract_mod, "_extract_examples", counting)
    resumed = extract(loaded.model, batch, cfg, cache=entry)
    assert computed == [2 * CHUNK, 3 * CHUNK, 4 * CHUNK]
    fresh = extract(loaded.model, batch, cfg)
    torch.testing.assert_close(resumed.acts_ND, fresh.acts_ND)
    assert entry.path.is_dir() and not entry.partial.exists()
