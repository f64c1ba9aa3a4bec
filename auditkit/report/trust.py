"""The trust table's folder: ``summary.md`` (one sentence, counts per flag, the table sorted by flag, the legend),
``datasets.csv`` (every column, full precision) and ``run.json`` (command, config, versions, timings), written
atomically with auditkit's marker so the command can regenerate it in place."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditkit.metrics.lexical import is_lexical
from auditkit.report.outputs import atomic_folder
from auditkit.report.tables import markdown_table
from auditkit.report.write import library_versions
from auditkit.trust.flags import (
    BROKEN_CONFLICT_SHARE,
    FLAGS,
    KNOWN_FAULTS,
    LEAKY_COPY_SHARE,
    LEXICAL_HEADROOM,
    MEANINGS,
)
from auditkit.trust.run import INTERVAL

if TYPE_CHECKING:
    from auditkit.trust.run import TrustResult

KIND = "datasets"
"""The marker's kind: the output of ``auditkit datasets --audit``."""
OWNED = ("summary.md", "datasets.csv", "run.json")
"""Every file the command writes; anything else in an earlier folder is carried over."""

TREEBANK_NOTE = (
    "No CoNLL-U treebank ships with auditkit (`conllu:PATH` reads the user's own file), so none is in this table."
)


def _ci(acc: float, low: float, high: float) -> str:
    return f"{acc:.2f} [{low:.2f}, {high:.2f}]"


def _short(name: str) -> str:
    return name.removeprefix("sae-probes:")


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    order = {f: i for i, f in enumerate(FLAGS)}
    return table.assign(_f=table["flag"].map(order), _i=range(len(table))).sort_values(["_f", "_i"])


def _legend(result: TrustResult) -> list[str]:
    cfg = result.config
    capped = int((result.table["texts_used"] < result.table["distinct_texts"]).sum())
    by_note: dict[str, list[str]] = {}
    for name, fault in KNOWN_FAULTS.items():
        by_note.setdefault(fault.note, []).append(f"`{_short(name)}`")
    faults = "; ".join(f"{', '.join(names)}: {note}" for note, names in by_note.items())
    return [
        "## Legend",
        "",
        (
            f"- **flag**, the worst that applies ({' > '.join(FLAGS)}): **broken** when a known fault says the data is "
            f"mis-formatted, or at least {BROKEN_CONFLICT_SHARE:.0%} of distinct texts carry conflicting labels; "
            f"**lexical** when the better text-only baseline closes at least {LEXICAL_HEADROOM:.0%} of the gap from the "
            f"majority share to perfect accuracy, (accuracy - majority) / (1 - majority) >= {LEXICAL_HEADROOM:g} (with "
            f"balanced binary classes: accuracy >= 0.80); **leaky** when copies are more than {LEAKY_COPY_SHARE:.0%} of "
            "rows, or a known leak (auditkit's own splits keep every copy of a text on one side, so copies do not leak "
            "into its audits; lexical ranks above leaky because nothing in an audit undoes it); "
            "**ok** otherwise. `reasons` lists every condition that holds, worst first; "
            "conflicting labels under the threshold are named without changing the flag. Defined once, in "
            "`auditkit/trust/flags.py`."
        ),
        (
            "- **rows**: rows of the source; **distinct**: distinct texts (equal after trimming whitespace); **copies**: "
            "rows beyond the first of a repeated text; **conflicting**: distinct texts whose copies carry different "
            "labels; **majority**: share of rows in the largest class. Counted on the whole dataset."
        ),
        (
            "- **bag-of-words**: TF-IDF over unigrams and bigrams, logistic regression at the lexical baselines' own C "
            f"({cfg.probe_C:g}, never the probes'); **length**: characters and whitespace tokens, standardised, the same logistic "
            "regression. Held-out accuracy, mean over seeds "
            f"{', '.join(map(str, cfg.seeds))}, each split by distinct text (every copy of a text on one side, "
            f"stratified by label) with test fraction {cfg.test_fraction:g}, as an audit splits. Fitted on at most "
            f"{cfg.max_texts:,} distinct texts per dataset: {capped} of the {len(result.table)} have more and were "
            "subsampled, stratified by class (`texts_used` in datasets.csv); the counts are of the whole dataset."
        ),
        f"- {INTERVAL[0].upper()}{INTERVAL[1:]}.",
        f"- Known faults (`auditkit/trust/flags.py`): {faults}.",
        f"- {TREEBANK_NOTE}",
        "",
    ]


def summary_markdown(result: TrustResult) -> str:
    """summary.md: one sentence, counts per flag, the table sorted by flag, then the legend."""
    t = result.table
    n = len(t)
    by_kind = t["kind"].value_counts()
    kinds = ", ".join(f"{by_kind[k]} {k}" for k in ("binary", "multiclass") if k in by_kind)
    count = t["flag"].value_counts()
    best = t[["bow_acc", "length_acc"]].max(axis=1)
    lexical_any = int(sum(is_lexical(b, m) for b, m in zip(best, t["majority"])))
    flags = ", ".join(f"{count.get(f, 0)} {f}" for f in FLAGS)
    lines = [
        "# Trust table of the shipped datasets",
        "",
        (
            f"{n} sae-probes classification tasks ({kinds}), read from their texts and labels alone (no model): "
            f"{flags}; whatever the flag, the words or the length alone read {lexical_any} of the {n} at the "
            "lexical level."
        ),
        "",
        markdown_table(
            pd.DataFrame(
                {
                    "flag": list(FLAGS),
                    "tasks": [int(count.get(f, 0)) for f in FLAGS],
                    "meaning": [MEANINGS[f] for f in FLAGS],
                }
            )
        ),
        "",
    ]
    s = _sorted(t)
    table = pd.DataFrame(
        {
            "flag": s["flag"],
            "dataset": s["dataset"].map(_short),
            "rows": s["rows"].map("{:,}".format),
            "distinct": s["distinct_texts"].map("{:,}".format),
            "copies": s["copies"].map("{:,}".format),
            "conflicting": s["conflicting_texts"].map("{:,}".format),
            "majority": s["majority"].map("{:.2f}".format),
            "bag-of-words [95% CI]": [_ci(*r) for r in zip(s["bow_acc"], s["bow_low"], s["bow_high"])],
            "length [95% CI]": [_ci(*r) for r in zip(s["length_acc"], s["length_low"], s["length_high"])],
            "reasons": s["reasons"].fillna(""),
        }
    )
    lines += [markdown_table(table), "", *_legend(result)]
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_record(result: TrustResult, command: str) -> dict[str, Any]:
    """run.json: the command, its config, the rules, versions and timings."""
    versions = library_versions()
    try:
        versions["scikit-learn"] = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        versions["scikit-learn"] = "not installed"
    return {
        "command": command,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(result.config).items()},
        "datasets": len(result.table),
        "flags": {f: int((result.table["flag"] == f).sum()) for f in FLAGS},
        "rules": {
            "broken_conflict_share": BROKEN_CONFLICT_SHARE,
            "leaky_copy_share": LEAKY_COPY_SHARE,
            "lexical_headroom": LEXICAL_HEADROOM,
            "interval": INTERVAL,
        },
        "treebank": TREEBANK_NOTE,
        "versions": versions,
        "timings": {
            "total_s": round(sum(result.timings.values()), 2),
            "per_dataset_s": {k: round(v, 2) for k, v in result.timings.items()},
        },
    }


def write_trust(result: TrustResult, out: Path, *, command: str) -> Path:
    """Write the folder ``out`` atomically (replacing only an earlier ``auditkit datasets --audit`` output)."""
    with atomic_folder(Path(out), KIND, owned=OWNED) as tmp:
        result.table.to_csv(tmp / "datasets.csv", index=False)
        (tmp / "summary.md").write_text(summary_markdown(result) + "\n")
        record = run_record(result, command)
        record["tables"] = {"datasets.csv": {"rows": len(result.table), "sha256": _sha256(tmp / "datasets.csv")}}
        (tmp / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    return Path(out)
