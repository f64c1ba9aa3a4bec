"""Every option of ``auditkit audit`` and ``auditkit sweep``, declared once: one :class:`Flag` per config field
(:mod:`auditkit.cli.declare` makes the Typer commands and the reproduce commands from them), grouped into the
``--help`` panels of the config's blocks; and the parsers of comma-separated values.

Type, default and help come from the config field unless a flag says otherwise; ``choices`` are the library's
own tuples of allowed values.
"""

from __future__ import annotations

import dataclasses
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from auditkit.cli.declare import Context, Flag, never, path_value, when_changed

from auditkit.audit.config import ALIGNMENTS, DEFAULT_DATASET
from auditkit.audit.options import DICTIONARIES, SAE_BASELINES, SOLVERS, parse_width
from auditkit.duplicates import DUPLICATE_POLICIES
from auditkit.errors import AuditkitError, ConfigError
from auditkit.extract import Positions
from auditkit.models.spec import DTYPES
from auditkit.sweep.executors import EXECUTORS


def parse_list(value: str, kind: type, option: str) -> tuple:
    """``"1,2,4"`` -> ``(1, 2, 4)`` as ``kind``; a bad item raises a one-line ConfigError."""
    try:
        return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a comma-separated list of {kind.__name__}s") from None


class DatasetKind(str, Enum):
    binary = "binary"
    multiclass = "multiclass"
    classification = "classification"
    all = "all"


def csv_items(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def probe_specs(value: str) -> tuple[str, ...]:
    """Comma-separated probe kinds; the bare integers after a ``k-sparse:k=`` spec continue its list
    (``logistic,k-sparse:k=1,5,20,mlp`` is three kinds)."""
    out: list[str] = []
    for item in csv_items(value):
        if item.isdigit() and out and "k=" in out[-1]:
            out[-1] += "," + item
        else:
            out.append(item)
    return tuple(out)


def seeds_list(value: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in csv_items(value))
    except ValueError:
        raise AuditkitError(f"{option} {value!r} is not a comma-separated list of integers (e.g. 0,1,2)") from None


# --- how values are read and written ---------------------------------------------------------------------------


def _ints(value: str, flag: str) -> tuple[int, ...]:
    return parse_list(value, int, flag)


def _floats(value: str, flag: str) -> tuple[float, ...]:
    return parse_list(value, float, flag)


def _csv(value: str, flag: str) -> tuple[str, ...]:
    return csv_items(value)


def _optional_csv(value: str | None, flag: str) -> tuple[str, ...] | None:
    return None if value is None else csv_items(value)


def _zero_is_all(value: int, flag: str) -> int | None:
    return value or None


def _negate(value: bool, flag: str) -> bool:
    return not value


def _width(value: str, flag: str) -> dict[str, Any]:
    expansion, width = parse_width(value)
    return {"expansion_factor": expansion, "width": width}


def _float(value: Any, ctx: Context) -> float:
    return float(value)


def _or_none(value: Any, ctx: Context) -> Any:
    return value or None


def _path(value: Any, ctx: Context) -> Any:
    return path_value(value) if value else None


def _dataset(value: str, ctx: Context) -> str:
    kind, _, rest = value.partition(":")
    return f"{kind}:{path_value(rest)}" if kind in ("conllu", "table") and rest else value


def _all_is_zero(value: int | None, ctx: Context) -> int:
    return 0 if value is None else value


def _not(value: bool, ctx: Context) -> bool:
    return not value


def _sae_width(value: Any, ctx: Context) -> str:
    sae = ctx.owner
    return str(sae.width) if sae.width is not None else f"{float(sae.expansion_factor)!r}x"


def _audit_controls(value: Any, ctx: Context) -> tuple[str, ...]:
    """The controls the audit ran: the named ones, else the defaults for its methods and data level."""
    from auditkit.audit.run import resolve_controls, spec_level

    return resolve_controls(ctx.audit, spec_level(ctx.audit.dataset))


def _sweep_controls(value: Any, ctx: Context) -> tuple[str, ...] | None:
    """The sweep's controls: the named ones, else its datasets' level's defaults; None (left to the defaults) when
    its datasets are of both levels, whose defaults differ."""
    from auditkit.audit.run import resolve_controls, spec_level
    from auditkit.sweep.plan import resolve_datasets

    levels = {spec_level(d) for d in resolve_datasets(ctx.root.datasets)}
    if ctx.audit.controls is None and len(levels) > 1:
        return None
    return resolve_controls(ctx.audit, levels.pop() if levels else None)


def _method(name: str) -> typing.Callable[[Context], bool]:
    """Written when the audit runs method ``name`` (its options mean nothing otherwise)."""
    return lambda ctx: name in ctx.audit.methods


def _pursuit_sweep(greedy: bool) -> typing.Callable[[Context], bool]:
    """The L0 sweep of the greedy solvers, or the penalty sweep of the lasso ones: whichever the solver reads."""
    return lambda ctx: "pursuit" in ctx.audit.methods and (ctx.owner.solver in ("omp", "gradient")) == greedy


def _table_or_changed(ctx: Context) -> bool:
    return ctx.changed or ctx.owner.dataset.startswith("table:")


def _custom_schedule(ctx: Context) -> bool:
    return ctx.owner.mdl and ctx.changed


def _matrix(ctx: Context) -> bool:
    return ctx.owner.matrix is not None


# --- the declaration ------------------------------------------------------------------------------------------

MODEL, DATA, AUDIT, PROBES, SAE, PURSUIT, EXECUTION, OUTPUT = (
    "Model",
    "Data",
    "Methods and controls",
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
        unparse=lambda v, ctx: path_value(v),
    ),
    Flag("--dataset", "dataset", DATA, help="sae-probes:TAG, conllu:PATH or table:PATH_OR_HUB_ID.", unparse=_dataset),
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
    Flag("--revision", "model.revision", MODEL, help="Hub revision / Pythia checkpoint (step0).", unparse=_or_none),
    Flag("--processed", "model.processed", MODEL, help="Apply TransformerLens weight processing."),
    Flag(
        "--gaussian-keep-embeddings", "gaussian_keep_embeddings", AUDIT, help="gaussian-reinit keeps W_E, W_pos, W_U."
    ),
    Flag(
        "--align",
        "align",
        DATA,
        choices=ALIGNMENTS,
        help="Sub-token a word's label sits on (token-level data).",
        show=when_changed,
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
    Flag(
        "--matrix",
        "matrix",
        DATA,
        help="W_E or W_U: probe embedding rows for --dataset token-properties:PROP (or :all).",
        show=_matrix,
    ),
    Flag(
        "--vocab-sample",
        "vocab_sample",
        DATA,
        help="Vocabulary tokens sampled as rows of a --matrix audit.",
        show=_matrix,
    ),
    Flag("--text-column", "text_column", DATA, show=_table_or_changed),
    Flag("--label-column", "label_column", DATA, show=_table_or_changed),
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
        "--hook",
        "hook",
        DATA,
        help="TransformerLens hook; default blocks.{n_layers//2}.hook_resid_pre.",
        unparse=_or_none,
    ),
    Flag(
        "--positions", "positions", DATA, choices=typing.get_args(Positions), help="Which token positions become rows."
    ),
    Flag(
        "--max-examples",
        "max_examples",
        DATA,
        type=int,
        help="Distinct texts used (0 = all); a repeated text counts once.",
        parse=_zero_is_all,
        unparse=_all_is_zero,
    ),
    Flag("--max-length", "max_length", DATA),
    Flag("--methods", "methods", AUDIT, help="Comma-separated methods.", parse=_csv),
    Flag(
        "--controls",
        "controls",
        AUDIT,
        help="Comma-separated controls (default: every control that applies to the methods and the data's level: "
        "control-task on token-level data only, lexical-bow and lexical-length on sentence-level data only); "
        f"{', '.join(SAE_BASELINES)} are the sae method's own, the lexical-* baselines the probe method's (other "
        "methods skip them). `auditkit controls` lists them all.",
        default=None,
        parse=_optional_csv,
        unparse=_audit_controls,
    ),
    Flag("--seeds", "seeds", AUDIT, help="Comma-separated seeds (>= 3 for intervals).", parse=seeds_list),
    Flag("--test-fraction", "test_fraction", DATA, unparse=_float),
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
    Flag("--probe-c", "probe_C", PROBES, help="Inverse L2 strength of the logistic probe.", unparse=_float),
    Flag(
        "--probes",
        "probes",
        PROBES,
        help="Probe kinds for --methods probe (k-sparse:k=1,5,20 chooses the ks).",
        default="logistic,mass-mean,lda,low-rank,mlp,k-sparse",
        parse=lambda v, flag: probe_specs(v),
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
        parse=_floats,
        show=_custom_schedule,
    ),
    Flag(
        "--sae-arch", "sae.architecture", SAE, help="SAE architecture: topk, standard or jumprelu.", show=_method("sae")
    ),
    Flag(
        "--sae-width",
        "sae.width",
        SAE,
        type=str,
        default="2x",
        help="SAE dictionary size: an expansion like 2x, or F like 1152.",
        parse=_width,
        sets=lambda v: v,
        unparse=_sae_width,
        show=_method("sae"),
    ),
    Flag("--sae-k", "sae.k", SAE, show=_method("sae")),
    Flag(
        "--sae-l1",
        "sae.l1_coefficient",
        SAE,
        help="L1 coefficient (standard SAE).",
        unparse=_float,
        show=_method("sae"),
    ),
    Flag("--sae-lr", "sae.lr", SAE, help="SAE learning rate.", unparse=_float, show=_method("sae")),
    Flag(
        "--sae-tokens",
        "sae.training_tokens",
        SAE,
        help="SAE training token budget, per arm and seed.",
        show=_method("sae"),
    ),
    Flag("--sae-batch-size", "sae.batch_size", SAE, help="SAE rows per optimiser step.", show=_method("sae")),
    Flag(
        "--sae-splice-texts",
        "sae.splice_texts",
        SAE,
        help="Held-out texts the SAE is spliced into the model on (CE loss recovered, KL).",
        show=_method("sae"),
    ),
    Flag(
        "--sae-load",
        "sae.load",
        SAE,
        help="Score this SAE (folder or RELEASE/SAE_ID) on the real arm.",
        unparse=_path,
        show=_method("sae"),
    ),
    Flag(
        "--dictionary",
        "pursuit.dictionary",
        PURSUIT,
        choices=DICTIONARIES,
        help="embed (W_E rows), unembed (W_U columns), sae (a TopK SAE trained per arm, or --pursuit-sae), probe "
        "(logistic-probe directions).",
        show=_method("pursuit"),
    ),
    Flag("--pursuit-solver", "pursuit.solver", PURSUIT, choices=SOLVERS, help="Sparse coder.", show=_method("pursuit")),
    Flag(
        "--pursuit-k",
        "pursuit.ks",
        PURSUIT,
        help="Target L0 sweep of omp/gradient; the largest feeds the code probe.",
        parse=_ints,
        show=_pursuit_sweep(greedy=True),
    ),
    Flag(
        "--pursuit-alphas",
        "pursuit.alphas",
        PURSUIT,
        help="Lasso penalties as fractions of alpha_max.",
        parse=_floats,
        show=_pursuit_sweep(greedy=False),
    ),
    Flag(
        "--pursuit-sae",
        "pursuit.sae_path",
        PURSUIT,
        help="--dictionary sae: a saved SAE folder or release instead of training one per arm.",
        unparse=_path,
        show=_method("pursuit"),
    ),
    Flag(
        "--pursuit-no-center",
        "pursuit.center",
        PURSUIT,
        type=bool,
        help="Code raw activations, not activations minus their mean.",
        parse=_negate,
        unparse=_not,
        show=_method("pursuit"),
    ),
    Flag("--batch-size", "batch_size", EXECUTION, show=never),
    Flag(
        "--no-cache",
        "use_cache",
        EXECUTION,
        type=bool,
        help="Neither read nor write the cache (activations, converted model).",
        parse=_negate,
        unparse=_not,
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

AUDIT_ONLY = ("datasets", "hooks")
"""Parameters (by name) of the flags ``audit`` does not take (a sweep's datasets and hooks)."""
SWEEP_SKIPS = ("dataset", "hook", "matrix", "vocab_sample", "no_cache", "quiet")
"""Parameters of the flags ``sweep`` does not take: its cells take their dataset and hook from ``--datasets`` and
``--hooks``, read every arm from the cache and are activation audits."""
SWEEP_FIELDS = ("datasets", "hooks")
"""The sweep's own fields (:class:`auditkit.sweep.config.SweepConfig`); every other field is its cells' audit's."""
SWEEP_CHANGES: dict[str, dict[str, Any]] = {
    "probes": {"default": "logistic,mass-mean", "help": "Probe kinds of every cell."},
    "methods": {"help": "Comma-separated methods of every cell."},
    "max_examples": {"help": "Distinct texts per dataset (0 = all)."},
    "controls": {
        "help": "Comma-separated controls (default: every control that applies to the methods and each dataset's "
        "level, as in `auditkit audit`).",
        "unparse": _sweep_controls,
    },
    "out": {"default": Path("reports/sweep")},
}
"""How a sweep's flag differs from the audit's (by parameter name): its defaults, help and reproduce value."""


def audit_flags() -> list[Flag]:
    """The flags of ``auditkit audit`` (fields of :class:`AuditConfig`; ``executor.*`` of ``ExecutorOptions``)."""
    return [f for f in FLAGS if f.param not in AUDIT_ONLY]


def sweep_flags() -> list[Flag]:
    """The flags of ``auditkit sweep`` (fields of :class:`SweepConfig`, its cells' audit under ``audit.``)."""
    out = []
    for f in FLAGS:
        if f.param in SWEEP_SKIPS:
            continue
        if f.field is not None and f.param not in SWEEP_FIELDS and not f.field.startswith("executor."):
            f = f.under("audit")
        out.append(dataclasses.replace(f, **SWEEP_CHANGES.get(f.param, {})))
    return out
