"""Every option of ``auditkit audit``, ``sweep`` and ``steer``, declared once: one :class:`Flag` per user choice,
naming the config field it sets and the ``--help`` panel of its block. :mod:`auditkit.cli.declare` makes the Typer
commands and the reproduce commands from this list; a flag's type, default and help come from its config field
(annotation, default, docstring) unless it says otherwise, its ``choices`` are the library's own tuple of allowed
values, and its converters are in :mod:`auditkit.cli.options`.

This module is the one place that spells these flags (``tests/integration/test_cli_declaration.py`` checks it).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from auditkit.cli.declare import FROM_FIELD, Flag, never, same, when_changed
from auditkit.cli.options import (
    all_is_zero,
    as_float,
    as_floats_or_none,
    as_path,
    audit_controls,
    csv,
    custom_schedule,
    dataset_spec,
    floats,
    floats_or_none,
    for_method,
    has_matrix,
    ints,
    negate,
    negated,
    numbers,
    optional_csv,
    or_none,
    probe_specs,
    pursuit_sweep,
    sae_width,
    sae_width_fields,
    seeds_list,
    steering_controls,
    sweep_controls,
    table_or_changed,
    zero_is_all,
)

from auditkit.audit.config import ALIGNMENTS, DEFAULT_C_GRID, DEFAULT_DATASET
from auditkit.audit.options import DICTIONARIES, SAE_BASELINES, SOLVERS
from auditkit.duplicates import DUPLICATE_POLICIES
from auditkit.extract import Positions
from auditkit.methods.probes import registry as probe_kinds
from auditkit.models.spec import DTYPES
from auditkit.sweep.executors import EXECUTORS

MODEL, DATA, AUDIT, STEERING, PROBES, SAE, PURSUIT, EXECUTION, OUTPUT = (
    "Model",
    "Data",
    "Methods and controls",
    "Steering",
    "Probes (--methods probe)",
    "SAE (--methods sae)",
    "Pursuit (--methods pursuit)",
    "Execution",
    "Output",
)

FLAGS: tuple[Flag, ...] = (
    Flag(
        "--model",
        "model.name",
        MODEL,
        help="Model: smollm2-135m, a TransformerLens name, a local HF folder, tiny-gpt2.",
        unparse=as_path,
    ),
    Flag("--revision", "model.revision", MODEL, help="Hub revision / Pythia checkpoint (step0).", unparse=or_none),
    Flag("--processed", "model.processed", MODEL, help="Apply TransformerLens weight processing."),
    Flag(
        "--dataset", "dataset", DATA, help="sae-probes:TAG, conllu:PATH or table:PATH_OR_HUB_ID.", unparse=dataset_spec
    ),
    Flag(
        "--datasets",
        "datasets",
        DATA,
        help="Comma-separated dataset specs, a group (sae-probes:binary, sae-probes:all) or a glob "
        "(sae-probes:*_news_*).",
        default=DEFAULT_DATASET,
    ),
    Flag(
        "--hooks",
        "hooks",
        DATA,
        help="all (every block's hook_resid_pre and the final residual), middle, a list, or a range "
        "blocks.0-29:2.hook_resid_pre.",
        default="all",
    ),
    Flag(
        "--hook",
        "hook",
        DATA,
        help="TransformerLens hook; default blocks.{n_layers//2}.hook_resid_pre.",
        unparse=or_none,
    ),
    Flag(
        "--positions", "positions", DATA, choices=typing.get_args(Positions), help="Which token positions become rows."
    ),
    Flag("--later-hook", "later_hook", DATA, help="Later hook to read effects at."),
    Flag(
        "--max-examples",
        "max_examples",
        DATA,
        type=int,
        help="Distinct texts used (0 = all); a repeated text counts once.",
        parse=zero_is_all,
        unparse=all_is_zero,
    ),
    Flag(
        "--duplicates",
        "duplicates",
        DATA,
        choices=DUPLICATE_POLICIES,
        help="Copies of a text are one example; copies whose labels disagree: group (keep), drop-conflicts, "
        "dedupe (one label per text).",
        show=when_changed,
    ),
    Flag(
        "--align",
        "align",
        DATA,
        choices=ALIGNMENTS,
        help="Sub-token a word's label sits on (token-level data).",
        show=when_changed,
    ),
    Flag("--text-column", "text_column", DATA, show=table_or_changed),
    Flag("--label-column", "label_column", DATA, show=table_or_changed),
    Flag(
        "--matrix",
        "matrix",
        DATA,
        help="W_E or W_U: probe embedding rows for --dataset token-properties:PROP (or :all).",
        show=has_matrix,
    ),
    Flag(
        "--vocab-sample",
        "vocab_sample",
        DATA,
        help="Vocabulary tokens sampled as rows of a --matrix audit.",
        show=has_matrix,
    ),
    Flag("--max-length", "max_length", DATA),
    Flag("--test-fraction", "test_fraction", DATA, unparse=as_float),
    Flag("--alphas", "alphas", STEERING, help="Comma-separated doses.", parse=numbers),
    Flag("--scale", "scale", STEERING, help="Dose unit: norm or gap."),
    Flag("--methods", "methods", AUDIT, help="Comma-separated methods.", parse=csv),
    Flag(
        "--controls",
        "controls",
        AUDIT,
        help="Comma-separated controls (default: every control that applies to the methods and the data's level: "
        "control-task on token-level data only, lexical-bow and lexical-length on sentence-level data only); "
        f"{', '.join(SAE_BASELINES)} are the sae method's own, the lexical-* baselines the probe method's (other "
        "methods skip them). `auditkit controls` lists them all.",
        default=None,
        parse=optional_csv,
        unparse=audit_controls,
    ),
    Flag("--seeds", "seeds", AUDIT, help="Comma-separated seeds (>= 3 for intervals).", parse=seeds_list),
    Flag(
        "--label-draws",
        "label_draws",
        AUDIT,
        help="Draws of each label control per seed (one more stacked fit each; no forward pass).",
    ),
    Flag(
        "--weight-draws",
        "weight_draws",
        AUDIT,
        help="Draws of each reinitialised model per seed (one forward pass each).",
    ),
    Flag(
        "--gaussian-keep-embeddings", "gaussian_keep_embeddings", AUDIT, help="gaussian-reinit keeps W_E, W_pos, W_U."
    ),
    Flag(
        "--probes",
        "probes",
        PROBES,
        help="Probe kinds for --methods probe (k-sparse:k=1,5,20 chooses the ks).",
        default=",".join(probe_kinds.names()),
        parse=lambda v, flag: probe_specs(v),
    ),
    Flag(
        "--probe-c",
        "probe_C",
        PROBES,
        help="Inverse L2 strength of the probes with --probe-c-grid none (and of k-sparse).",
        unparse=as_float,
    ),
    Flag(
        "--probe-c-grid",
        "probe_c_grid",
        PROBES,
        help="Each arm and seed chooses its C among these by 3-fold CV on its training texts; none: fit at --probe-c.",
        default=",".join(f"{c:g}" for c in DEFAULT_C_GRID),
        parse=floats_or_none,
        unparse=as_floats_or_none,
    ),
    Flag(
        "--mdl",
        "mdl",
        PROBES,
        help="--methods probe: also score each dense probe kind by its online codelength (MDL) and compression.",
    ),
    Flag(
        "--mdl-schedule",
        "mdl_schedule",
        PROBES,
        help="--mdl: block ends as fractions of the training rows (default 0.1% doubling to 100%).",
        parse=floats,
        show=custom_schedule,
    ),
    Flag(
        "--sae-arch",
        "sae.architecture",
        SAE,
        help="SAE architecture: topk, standard or jumprelu.",
        show=for_method("sae"),
    ),
    Flag(
        "--sae-width",
        "sae.width",
        SAE,
        type=str,
        default="2x",
        help="SAE dictionary size: an expansion like 2x, or F like 1152.",
        parse=sae_width_fields,
        sets_siblings=True,
        unparse=sae_width,
        show=for_method("sae"),
    ),
    Flag("--sae-k", "sae.k", SAE, show=for_method("sae")),
    Flag(
        "--sae-l1",
        "sae.l1_coefficient",
        SAE,
        help="L1 coefficient (standard SAE).",
        unparse=as_float,
        show=for_method("sae"),
    ),
    Flag("--sae-lr", "sae.lr", SAE, help="SAE learning rate.", unparse=as_float, show=for_method("sae")),
    Flag(
        "--sae-tokens",
        "sae.training_tokens",
        SAE,
        help="SAE training token budget, per arm and seed.",
        show=for_method("sae"),
    ),
    Flag("--sae-batch-size", "sae.batch_size", SAE, help="SAE rows per optimiser step.", show=for_method("sae")),
    Flag(
        "--sae-splice-texts",
        "sae.splice_texts",
        SAE,
        help="Held-out texts the SAE is spliced into the model on (CE loss recovered, KL).",
        show=for_method("sae"),
    ),
    Flag(
        "--sae-load",
        "sae.load",
        SAE,
        help="Score this SAE (folder or RELEASE/SAE_ID) on the real arm.",
        unparse=as_path,
        show=for_method("sae"),
    ),
    Flag(
        "--dictionary",
        "pursuit.dictionary",
        PURSUIT,
        choices=DICTIONARIES,
        help="embed (W_E rows), unembed (W_U columns), sae (a TopK SAE trained per arm, or --pursuit-sae), probe "
        "(logistic-probe directions).",
        show=for_method("pursuit"),
    ),
    Flag(
        "--pursuit-solver", "pursuit.solver", PURSUIT, choices=SOLVERS, help="Sparse coder.", show=for_method("pursuit")
    ),
    Flag(
        "--pursuit-k",
        "pursuit.ks",
        PURSUIT,
        help="Target L0 sweep of omp/gradient; the largest feeds the code probe.",
        parse=ints,
        show=pursuit_sweep(greedy=True),
    ),
    Flag(
        "--pursuit-alphas",
        "pursuit.alphas",
        PURSUIT,
        help="Lasso penalties as fractions of alpha_max.",
        parse=floats,
        show=pursuit_sweep(greedy=False),
    ),
    Flag(
        "--pursuit-sae",
        "pursuit.sae_path",
        PURSUIT,
        help="--dictionary sae: a saved SAE folder or release instead of training one per arm.",
        unparse=as_path,
        show=for_method("pursuit"),
    ),
    Flag(
        "--pursuit-no-center",
        "pursuit.center",
        PURSUIT,
        type=bool,
        help="Code raw activations, not activations minus their mean.",
        parse=negate,
        unparse=negated,
        show=for_method("pursuit"),
    ),
    Flag(
        "--device",
        "model.device",
        EXECUTION,
        help="Device of the forward passes and the fits (probes, SAEs): cpu, cuda (cuda:N), mps or auto.",
        show=when_changed,
    ),
    Flag(
        "--dtype",
        "model.dtype",
        EXECUTION,
        choices=DTYPES,
        help="Parameter dtype of the forward passes; activations are fitted in float32.",
        show=when_changed,
    ),
    Flag("--batch-size", "batch_size", EXECUTION, show=never),
    Flag(
        "--no-cache",
        "use_cache",
        EXECUTION,
        type=bool,
        help="Neither read nor write the cache (activations, converted model).",
        parse=negate,
        unparse=negated,
        also=("model.use_cache",),
        show=never,
    ),
    Flag(
        "--cache-dir",
        "model.cache_dir",
        EXECUTION,
        help="Cache root (default $AUDITKIT_CACHE or ~/.cache/auditkit).",
        show=never,
    ),
    Flag(
        "--executor",
        "executor.executor",
        EXECUTION,
        choices=EXECUTORS,
        help="Where the cells run: local (this process, serial) or ray (a Ray cluster).",
        show=never,
    ),
    Flag(
        "--ray-address",
        "executor.ray_address",
        EXECUTION,
        help="--executor ray: auto (this machine's cluster) or HOST:PORT; default a new local one.",
        show=never,
    ),
    Flag(
        "--ray-cpus",
        "executor.num_cpus",
        EXECUTION,
        help="--executor ray: CPUs per actor (its torch threads).",
        show=never,
    ),
    Flag(
        "--ray-gpus",
        "executor.num_gpus",
        EXECUTION,
        help="--executor ray: GPUs per actor (with --device cuda).",
        show=never,
    ),
    Flag(
        "--ray-workers",
        "executor.workers",
        EXECUTION,
        help="--executor ray: actors (default: as many as the cluster holds).",
        show=never,
    ),
    Flag("--out", None, OUTPUT, type=Path, default=Path("reports/default"), help="Output folder."),
    Flag("--verbose", None, OUTPUT, type=bool, default=False, help="Log progress messages.", short="-v"),
    Flag("--quiet", None, OUTPUT, type=bool, default=False, help="Print only the report's path.", short="-q"),
)
"""Every option of ``audit`` and ``sweep``, in the order ``--help`` and the reproduce commands list them."""

SWEEP_SKIPS = ("dataset", "hook", "matrix", "vocab_sample", "no_cache", "quiet")
"""Parameters of the flags ``sweep`` does not take: its cells take their dataset and hook from ``--datasets`` and
``--hooks``, read every arm from the cache and are activation audits."""
SWEEP_ONLY = ("datasets", "hooks")
"""Parameters (by name) of the flags of the sweep's own fields (:class:`auditkit.sweep.config.SweepConfig`), which
``audit`` does not take; every other field a sweep flag sets is its cells' audit's."""
SWEEP_CHANGES: dict[str, dict[str, Any]] = {
    "probes": {"default": "logistic,mass-mean", "help": "Probe kinds of every cell."},
    "methods": {"help": "Comma-separated methods of every cell."},
    "max_examples": {"help": "Distinct texts per dataset (0 = all)."},
    "controls": {
        "help": "Comma-separated controls (default: every control that applies to the methods and each dataset's "
        "level, as in `auditkit audit`).",
        "unparse": sweep_controls,
    },
    "out": {"default": Path("reports/sweep")},
}
"""How a sweep's flag differs from the audit's (by parameter name): its defaults, help and reproduce value."""
STEER_CHANGES: dict[str, dict[str, Any]] = {
    "model": {"help": "Model spec, as for audit."},
    "datasets": {
        "help": "Comma-separated sae-probes tags (one multiclass or several binary).",
        "default": FROM_FIELD,
        "parse": csv,
    },
    "hook": {"help": "Hook to write at; default the middle resid_pre."},
    "later_hook": {},
    "max_examples": {"help": "Texts used (0 = all)."},
    "alphas": {},
    "scale": {},
    "positions": {"help": "Steer all positions or the last.", "choices": None},
    "controls": {
        "help": "spectral-reinit, gaussian-reinit, or none.",
        "default": FROM_FIELD,
        "parse": steering_controls,
        "unparse": same,
    },
    "seeds": {"help": "Comma-separated seeds."},
    "cache_dir": {"help": "Cache root."},
    "no_cache": {"help": "Convert the embedded model without caching it.", "field": "model.use_cache", "also": ()},
    "out": {"default": Path("reports/steering")},
    "quiet": {},
}
"""The flags of ``auditkit steer`` (fields of :class:`auditkit.steering.run.SteeringConfig`), by parameter name,
and how each differs from the audit's."""
STEER_ONLY = ("later_hook", "alphas", "scale")


def audit_flags() -> list[Flag]:
    """The flags of ``auditkit audit`` (fields of :class:`AuditConfig`; ``executor.*`` of ``ExecutorOptions``)."""
    return [f for f in FLAGS if f.param not in SWEEP_ONLY + STEER_ONLY]


def sweep_flags() -> list[Flag]:
    """The flags of ``auditkit sweep`` (fields of :class:`SweepConfig`, its cells' audit under ``audit.``)."""
    out = []
    for f in FLAGS:
        if f.param in SWEEP_SKIPS + STEER_ONLY:
            continue
        if f.field is not None and f.param not in SWEEP_ONLY and not f.field.startswith("executor."):
            f = f.under("audit")
        out.append(dataclasses.replace(f, **SWEEP_CHANGES.get(f.param, {})))
    return out


def steer_flags() -> list[Flag]:
    """The flags of ``auditkit steer`` (fields of :class:`auditkit.steering.run.SteeringConfig`)."""
    return [dataclasses.replace(f, **STEER_CHANGES[f.param]) for f in FLAGS if f.param in STEER_CHANGES]
