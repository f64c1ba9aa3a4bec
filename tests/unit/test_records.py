"""The typed records of run.json's blocks: they give back every committed audit's blocks key for key and in
order (so run.json is written byte-identically through them), keep an unknown key in ``extras``, and refuse
an absent required key in one line naming the key and the file."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from auditkit.audit.config import AuditConfig
from auditkit.audit.records import DatasetInfo, ExtractionInfo, MethodInfo, ProvenanceInfo
from auditkit.audit.saved import load_run
from auditkit.errors import OutputError

REPORTS = Path(__file__).resolve().parents[2] / "reports"
RECORDS = {"provenance": ProvenanceInfo, "dataset": DatasetInfo, "extraction": ExtractionInfo}


def _audit_runs() -> list[Path]:
    """Every committed run.json an audit wrote, told by its keys (a sweep's, a calibration's do not hold them)."""
    runs = []
    for path in sorted(REPORTS.rglob("run.json")):
        if {*RECORDS, "methods", "config"} <= set(json.loads(path.read_text())):
            runs.append(path)
    return runs


AUDIT_RUNS = _audit_runs()


def test_every_committed_audit_run_is_found():
    names = {str(p.parent.relative_to(REPORTS)) for p in AUDIT_RUNS}
    assert {"default", "layer5-small", "pos", "pos-mdl", "sae", "pursuit", "embedding/capitalised"} <= names
    assert not any(n.startswith(("sweeps", "calibration", "datasets")) for n in names)


@pytest.mark.parametrize("path", AUDIT_RUNS, ids=lambda p: str(p.parent.relative_to(REPORTS)))
def test_records_give_back_every_committed_block_byte_for_byte(path):
    run = json.loads(path.read_text())
    for block, cls in RECORDS.items():
        record = cls.from_dict(run[block], str(path))
        assert record.extras == {}  # every key the audit writes is a typed field
        back = record.to_dict()
        assert json.dumps(back, indent=2) == json.dumps(run[block], indent=2)  # same keys, values and order
        assert cls.from_dict(back) == record
    for method, entry in run["methods"].items():
        info = MethodInfo.from_dict(entry, str(path))
        assert info.headline and list(info.headline) == entry["headline"] and "headline" not in info.extras
        assert json.dumps(info.to_dict(), indent=2) == json.dumps(entry, indent=2), method  # headline still last
        assert MethodInfo.from_dict(info.to_dict()) == info


def test_a_record_built_in_code_survives_its_dict():
    ds = DatasetInfo(
        name="t",
        source="table",
        fingerprint="ab" * 32,
        level="sentence",
        n_texts=3,
        n_items=3,
        class_names=("no", "yes"),
        class_counts=(1, 2),
        n_tokens=9,
        label_notes=(),
    )
    assert DatasetInfo.from_dict(ds.to_dict()) == ds
    assert "trust" not in ds.to_dict() and ds.to_dict()["label_notes"] == []  # an empty list is kept, None is not
    ex = ExtractionInfo(hook="blocks.0.hook_resid_post", positions="last", rows=None, d=8, cache_key=None)
    assert ExtractionInfo.from_dict(ex.to_dict()) == ex and ex.to_dict()["rows"] is None
    info = MethodInfo(headline=("accuracy",), extras={"C": 1.0, "kinds": {"logistic": {}}})
    assert info.to_dict() == {"C": 1.0, "kinds": {"logistic": {}}, "headline": ["accuracy"]}
    assert list(info.to_dict()) == ["C", "kinds", "headline"] and MethodInfo.from_dict(info.to_dict()) == info
    assert MethodInfo.from_dict({"C": 1.0}).headline is None  # written before headlines: the report shows accuracy


def _copy(tmp_path: Path, edit) -> Path:
    out = tmp_path / "default"
    shutil.copytree(REPORTS / "default", out)
    run = json.loads((out / "run.json").read_text())
    edit(run)
    (out / "run.json").write_text(json.dumps(run, indent=2))
    return out


def test_an_unknown_key_lands_in_extras(tmp_path):
    def add(run):
        run["dataset"]["annotator"] = {"who": "a newer auditkit"}
        run["extraction"]["stride"] = 2

    result, _ = load_run(_copy(tmp_path, add))
    assert result.method_info["probe"].extras["C"] == 1.0 and result.method_info["probe"].headline == ("accuracy",)
    assert result.dataset.extras == {"annotator": {"who": "a newer auditkit"}}
    assert result.extraction.extras == {"stride": 2} and result.provenance.extras == {}
    assert result.dataset.to_dict()["annotator"] == {"who": "a newer auditkit"}  # kept, written back last
    assert result.dataset.name == json.loads((REPORTS / "default/run.json").read_text())["dataset"]["name"]


@pytest.mark.parametrize(("block", "key"), [("dataset", "fingerprint"), ("extraction", "hook"), ("provenance", "name")])
def test_an_absent_required_key_is_one_line_naming_it_and_the_file(tmp_path, block, key):
    out = _copy(tmp_path, lambda run: run[block].pop(key))
    with pytest.raises(OutputError) as info:
        load_run(out)
    message = str(info.value)
    assert "\n" not in message and f"{out / 'run.json'}" in message and f"{block!r} has no {key!r}" in message


@pytest.mark.parametrize("name", ["default", "embedding/capitalised"])
def test_writing_a_read_audit_gives_back_its_blocks_and_report(name, tmp_path):
    """An audit read back and written again through the records: run.json's blocks and report.md are the
    committed ones byte for byte (the command line, versions and table digests are the writer's own)."""
    from auditkit.report.write import write_outputs

    committed = REPORTS / name
    result, run = load_run(committed)
    out = write_outputs(result, tmp_path / "out", run["command"])
    again = json.loads((out / "run.json").read_text())
    # a config option added after the report was written comes back at its default, and only then
    defaults = {f.name: f.default for f in dataclasses.fields(AuditConfig) if f.default is not dataclasses.MISSING}
    added = {k for k in again["config"].keys() - run["config"].keys() if again["config"][k] in ([], None, defaults[k])}
    again["config"] = {k: v for k, v in again["config"].items() if k not in added}
    for block in ("config", *RECORDS, "methods", "timings"):
        assert json.dumps(again[block], indent=2) == json.dumps(run[block], indent=2), block
    assert (out / "report.md").read_bytes() == (committed / "report.md").read_bytes()
    assert (out / "results.csv").read_bytes() == (committed / "results.csv").read_bytes()
