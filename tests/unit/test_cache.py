"""The activation cache: keyed by the whole request, atomic, resumable after SIGKILL, and verified on
load: a corrupt, truncated, swapped or half-written entry is moved aside with one warning and
recomputed, never used."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file

from auditkit import cache as cache_mod
from auditkit import data
from auditkit import extract as extract_mod
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


def _record_computed_chunks(monkeypatch) -> list[int]:
    """The first example of every chunk extraction computes (not loads), in order."""
    computed: list[int] = []
    original = extract_mod._extract_examples

    def counting(model, batch, plan, cfg, lo, hi, bar, **kw):
        computed.append(lo)
        return original(model, batch, plan, cfg, lo, hi, bar, **kw)

    monkeypatch.setattr(extract_mod, "_extract_examples", counting)
    return computed


def test_key_depends_on_every_field():
    """The real key: every input that changes the extracted rows (model weights, hook, positions, BOS,
    dtype, chunking, dataset, token variant) gives a new key; the same inputs in another order do not."""
    loaded, batch, cfg = _setup()
    base = cache_request(loaded.provenance, batch, cfg)
    assert request_key(base) == request_key(dict(reversed(list(base.items()))))
    other_model = load_model(ModelSpec(name="tiny-gpt2", seed=1))
    variants = [
        cache_request(other_model.provenance, batch, cfg),
        cache_request(loaded.provenance, batch, dataclasses.replace(cfg, hook="blocks.0.hook_resid_post")),
        cache_request(loaded.provenance, batch, dataclasses.replace(cfg, positions="last")),
        cache_request(loaded.provenance, batch, dataclasses.replace(cfg, include_bos=not cfg.include_bos)),
        cache_request(loaded.provenance, batch, dataclasses.replace(cfg, dtype="float64")),
        cache_request(loaded.provenance, batch, dataclasses.replace(cfg, chunk_size=cfg.chunk_size + 1)),
        cache_request(loaded.provenance, dataclasses.replace(batch, dataset_fingerprint="another"), cfg),
        cache_request(loaded.provenance, dataclasses.replace(batch, variant="random-tokens-uniform/1"), cfg),
    ]
    changed = {k for v in variants for k in v if v[k] != base[k]}
    assert changed == set(base) - {"n_examples"}  # n_examples follows the dataset; every other field is varied
    keys = [request_key(v) for v in variants]
    assert len(set(keys) | {request_key(base)}) == len(variants) + 1


def test_second_run_loads_instead_of_computing(tmp_path, monkeypatch):
    loaded, batch, cfg = _setup()
    entry = CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg))
    first = extract(loaded.model, batch, cfg, cache=entry)
    assert (entry.path / "meta.json").is_file() and not entry.partial.exists()

    monkeypatch.setattr(extract_mod, "_extract_examples", _boom)
    again = extract(loaded.model, batch, cfg, cache=CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg)))
    torch.testing.assert_close(first.acts_ND, again.acts_ND)


def test_other_weights_get_another_key():
    loaded, batch, cfg = _setup()
    other = load_model(ModelSpec(name="tiny-gpt2", seed=1))
    assert request_key(cache_request(loaded.provenance, batch, cfg)) != request_key(
        cache_request(other.provenance, batch, cfg)
    )


def _finished(tmp_path, cfg=None):
    """A finished entry at ``tmp_path`` and the activations it holds."""
    loaded, batch, base_cfg = _setup()
    cfg = cfg or base_cfg
    entry = CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg))
    acts = extract(loaded.model, batch, cfg, cache=entry).acts_ND
    assert (entry.path / "meta.json").is_file()
    return loaded, batch, cfg, entry, acts


def _cached(loaded, batch, cfg, root):
    return extract(
        loaded.model, batch, cfg, cache=CacheEntry(root, cache_request(loaded.provenance, batch, cfg))
    ).acts_ND


def _rerun(loaded, batch, cfg, root, caplog):
    """Extract again through a fresh entry; the cache warnings it logged."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="auditkit.cache"):
        acts = _cached(loaded, batch, cfg, root)
    return acts, [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _assert_moved_aside_and_recomputed(entry, warnings, acts, clean, monkeypatch, loaded, batch, cfg, root):
    assert len(warnings) == 1 and str(entry.path) in warnings[0] and "\n" not in warnings[0], warnings
    torch.testing.assert_close(acts, clean, rtol=0, atol=0)
    assert len(list(entry.base.glob(f"{entry.key}.corrupt-*"))) == 1, "the bad entry was not kept aside"
    monkeypatch.setattr(extract_mod, "_extract_examples", _boom)  # the rewritten entry is trusted again
    torch.testing.assert_close(_cached(loaded, batch, cfg, root), clean, rtol=0, atol=0)


def _boom(*a, **k):
    raise AssertionError("recomputed a cached entry")


def _flip_byte(path, offset_from_end=5):
    blob = bytearray(path.read_bytes())
    blob[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_flipped_byte_in_a_finished_entry_is_moved_aside_and_recomputed(tmp_path, caplog, monkeypatch):
    loaded, batch, cfg, entry, clean = _finished(tmp_path)
    _flip_byte(entry.path / "tensors.safetensors")
    acts, warnings = _rerun(loaded, batch, cfg, tmp_path, caplog)
    _assert_moved_aside_and_recomputed(entry, warnings, acts, clean, monkeypatch, loaded, batch, cfg, tmp_path)


def test_swapped_tensor_files_are_detected(tmp_path, caplog, monkeypatch):
    loaded, batch, cfg, entry_a, clean_a = _finished(tmp_path)
    cfg_b = dataclasses.replace(cfg, hook="blocks.1.hook_resid_post")
    _, _, _, entry_b, clean_b = _finished(tmp_path, cfg_b)
    assert not torch.equal(clean_a, clean_b)
    a, b = entry_a.path / "tensors.safetensors", entry_b.path / "tensors.safetensors"
    tmp = tmp_path / "swap"
    a.rename(tmp), b.rename(a), tmp.rename(b)
    for entry, c, clean in ((entry_a, cfg, clean_a), (entry_b, cfg_b, clean_b)):
        acts, warnings = _rerun(loaded, batch, c, tmp_path, caplog)
        assert len(warnings) == 1 and str(entry.path) in warnings[0] and "checksum" in warnings[0], warnings
        torch.testing.assert_close(acts, clean, rtol=0, atol=0)


def test_entry_without_meta_json_does_not_wedge_the_cache(tmp_path, caplog, monkeypatch):
    # Before checksums, such a folder read as "no entry", and the recomputed entry could then never be
    # renamed onto it (os.replace onto a non-empty folder): every later run ended in a traceback.
    loaded, batch, cfg, entry, clean = _finished(tmp_path)
    (entry.path / "meta.json").unlink()
    acts, warnings = _rerun(loaded, batch, cfg, tmp_path, caplog)
    assert "meta.json is missing" in warnings[0]
    _assert_moved_aside_and_recomputed(entry, warnings, acts, clean, monkeypatch, loaded, batch, cfg, tmp_path)


def test_edited_meta_json_is_moved_aside_not_a_dead_end(tmp_path, caplog, monkeypatch):
    loaded, batch, cfg, entry, clean = _finished(tmp_path)
    meta = json.loads((entry.path / "meta.json").read_text())
    (entry.path / "meta.json").write_text(json.dumps({**meta, "request": {"model": "something else"}}))
    acts, warnings = _rerun(loaded, batch, cfg, tmp_path, caplog)
    assert "another request" in warnings[0]
    _assert_moved_aside_and_recomputed(entry, warnings, acts, clean, monkeypatch, loaded, batch, cfg, tmp_path)


def test_old_format_entries_without_checksums_are_recomputed(tmp_path, caplog, monkeypatch):
    """An entry as the first cache format wrote it (meta.json without checksum) is never used: not
    at the first format's key, nor at today's."""
    loaded, batch, cfg = _setup()
    request = cache_request(loaded.provenance, batch, cfg)
    clean = extract(loaded.model, batch, cfg).acts_ND
    stale = torch.zeros_like(clean)
    with monkeypatch.context() as m:
        m.setattr(cache_mod, "FORMAT_VERSION", 1)
        old_key = cache_mod.request_key(request)
    new_key = CacheEntry(tmp_path, request).key
    for key in {old_key, new_key}:
        folder = tmp_path / "activations" / key
        folder.mkdir(parents=True)
        save_file({"acts": stale}, str(folder / "tensors.safetensors"))
        (folder / "meta.json").write_text(json.dumps({"request": json.loads(json.dumps(request, sort_keys=True))}))
    acts, warnings = _rerun(loaded, batch, cfg, tmp_path, caplog)
    torch.testing.assert_close(acts, clean, rtol=0, atol=0)
    if new_key != old_key:
        assert len(warnings) == 1 and new_key in warnings[0] and "format" in warnings[0], warnings


def test_truncated_or_flipped_chunks_are_moved_aside_and_recomputed(tmp_path, caplog, monkeypatch):
    loaded, batch, cfg = _setup()
    entry = CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg))

    class Crash(Exception):
        pass

    def crash(self, tensors):
        raise Crash

    with monkeypatch.context() as m:  # every chunk saved, then the run dies before finishing
        m.setattr(CacheEntry, "finish", crash)
        with pytest.raises(Crash):
            extract(loaded.model, batch, cfg, cache=entry)
    chunk1, chunk3 = entry.partial / "chunk-00001.safetensors", entry.partial / "chunk-00003.safetensors"
    chunk1.write_bytes(chunk1.read_bytes()[:-40])
    _flip_byte(chunk3)

    computed = _record_computed_chunks(monkeypatch)
    acts, warnings = _rerun(loaded, batch, cfg, tmp_path, caplog)
    assert computed == [1 * CHUNK, 3 * CHUNK]
    assert len(warnings) == 2 and str(chunk1) in warnings[0] and str(chunk3) in warnings[1], warnings
    torch.testing.assert_close(acts, extract(loaded.model, batch, cfg).acts_ND, rtol=0, atol=0)
    assert len(list(entry.base.glob(f"{entry.key}.chunk-*.corrupt-*"))) == 2, "a bad chunk was not kept aside"


def test_a_chunk_of_another_entry_is_not_used(tmp_path, caplog, monkeypatch):
    loaded, batch, cfg = _setup()
    entry = CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg))
    other = CacheEntry(tmp_path, {"some": "other request"})
    other.save_chunk(0, {"acts": torch.zeros(3, 64)})
    entry.partial.mkdir(parents=True)
    (other.partial / "chunk-00000.safetensors").rename(entry.partial / "chunk-00000.safetensors")
    with caplog.at_level(logging.WARNING, logger="auditkit.cache"):
        assert entry.load_chunk(0) is None
    assert "written for key" in caplog.records[0].getMessage()


def test_cache_root_that_cannot_be_written_is_one_clear_error(tmp_path):
    from auditkit.cache import check_root

    regular = tmp_path / "file"
    regular.write_text("not a folder")
    for root in (regular, regular / "under", regular / "under" / "deeper"):
        with pytest.raises(CacheError, match="--no-cache") as info:
            check_root(root)
        assert "\n" not in str(info.value)
    assert regular.read_text() == "not a folder"
    check_root(tmp_path / "new" / "cache")  # a missing folder under a writable one is fine...
    assert not (tmp_path / "new").exists()  # ...and the probe creates nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


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
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    loaded, batch, cfg = _setup()
    entry = CacheEntry(tmp_path, cache_request(loaded.provenance, batch, cfg))
    assert not entry.path.exists(), "a killed run left a finished-looking entry"
    assert sorted(p.name for p in entry.partial.glob("chunk-*")) == [
        "chunk-00000.safetensors",
        "chunk-00001.safetensors",
    ]
    assert not list(entry.partial.glob(".*")), "a killed run left a temporary file"

    computed = _record_computed_chunks(monkeypatch)
    resumed = extract(loaded.model, batch, cfg, cache=entry)
    assert computed == [2 * CHUNK, 3 * CHUNK, 4 * CHUNK]
    fresh = extract(loaded.model, batch, cfg)
    torch.testing.assert_close(resumed.acts_ND, fresh.acts_ND)
    assert entry.path.is_dir() and not entry.partial.exists()
