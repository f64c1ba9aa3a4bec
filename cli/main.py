"""``auditkit``: argument parsing only. Each command builds a config, calls one library function,
and writes outputs. Bad input becomes a one-line message on stderr and exit code 2."""

from __future__ import annotations

import functools
import logging
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from typer.core import TyperGroup

try:  # recent Typer vendors its own copy of click; older Typer uses click itself
    from typer._click.core import Context
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.core import Context
    from click.exceptions import UsageError

from auditkit.audit.options import DICTIONARIES, SOLVERS, PursuitAuditOptions
from auditkit.errors import AuditkitError, ConfigError


def parse_list(value: str, kind: type, option: str) -> tuple:
    """``"1,2,4"`` -> ``(1, 2, 4)`` as ``kind``; a bad item raises a one-line ConfigError."""
    try:
        return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a comma-separated list of {kind.__name__}s") from None


MAX_ERROR_CHARS = 300
"""An error line is cut to this many characters: a message may quote user input (a table header, a file)."""


def _fail(message: str) -> typer.Exit:
    """Print ``error: message`` as one line of at most :data:`MAX_ERROR_CHARS` on stderr; the Exit(2) to raise.

    The one place the CLI prints an error, so the cap and the one-line rule hold for every message."""
    line = " ".join(f"error: {message}".split())
    if len(line) > MAX_ERROR_CHARS:
        line = f"{line[: MAX_ERROR_CHARS - 30]}... ({len(line):,} characters cut)"
    typer.echo(line, err=True)
    return typer.Exit(2)


class _OneLineGroup(TyperGroup):
    """A bad option value (``--positions foo``, ``--max-examples x``), an unknown option or command prints
    one ``error:`` line and exits 2, like every other bad input, instead of Typer's usage box. ``--help``
    is not an error and still prints the help."""

    def invoke(self, ctx: Context) -> object:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "auditkit"
            raise _fail(f"{exc.format_message()} (`{command} --help` lists the options)") from None


app = typer.Typer(
    cls=_OneLineGroup, add_completion=False, no_args_is_help=True, help="Controls for interpretability claims."
)


class Positions(str, Enum):
    auto = "auto"
    all = "all"
    last = "last"
    mean = "mean"
    labelled = "labelled"


class Align(str, Enum):
    first = "first"
    last = "last"


class Duplicates(str, Enum):
    group = "group"
    drop_conflicts = "drop-conflicts"
    dedupe = "dedupe"


class Executor(str, Enum):
    local = "local"
    ray = "ray"


class Dtype(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
    float64 = "float64"


class DatasetKind(str, Enum):
    binary = "binary"
    multiclass = "multiclass"
    classification = "classification"
    all = "all"


DictionaryKind = Enum("DictionaryKind", {d: d for d in DICTIONARIES}, type=str)
PursuitSolver = Enum("PursuitSolver", {s: s for s in SOLVERS}, type=str)


DeviceOption = Annotated[
    str, typer.Option(help="Device of the forward passes and the fits (probes, SAEs): cpu, cuda (cuda:N), mps or auto.")
]
DtypeOption = Annotated[
    Dtype, typer.Option(help="Parameter dtype of the forward passes; activations are fitted in float32.")
]
ExecutorOption = Annotated[
    Executor, typer.Option(help="Where the cells run: local (this process, serial) or ray (a Ray cluster).")
]
RayAddressOption = Annotated[
    Optional[str],
    typer.Option(help="--executor ray: auto (this machine's cluster) or HOST:PORT; default a new local one."),
]
RayCpusOption = Annotated[float, typer.Option(help="--executor ray: CPUs per actor (its torch threads).")]
RayGpusOption = Annotated[float, typer.Option(help="--executor ray: GPUs per actor (with --device cuda).")]
RayWorkersOption = Annotated[
    Optional[int], typer.Option(help="--executor ray: actors (default: as many as the cluster holds).")
]


SaeArchOption = Annotated[str, typer.Option(help="SAE architecture for --methods sae: topk, standard or jumprelu.")]
SaeWidthOption = Annotated[str, typer.Option(help="SAE dictionary size: an expansion like 2x, or F like 1152.")]
SaeKOption = Annotated[int, typer.Option(help="Active latents per token (topk SAE).")]
SaeL1Option = Annotated[float, typer.Option(help="L1 coefficient (standard SAE).")]
SaeLrOption = Annotated[float, typer.Option(help="SAE learning rate.")]
SaeTokensOption = Annotated[int, typer.Option(help="SAE training token budget, per arm and seed.")]
SaeBatchOption = Annotated[int, typer.Option(help="SAE rows per optimiser step.")]
SaeSpliceOption = Annotated[
    int, typer.Option(help="Held-out texts the SAE is spliced into the model on (CE loss recovered, KL).")
]
SaeLoadOption = Annotated[
    Optional[str], typer.Option(help="Score this SAE (folder or RELEASE/SAE_ID) on the real arm.")
]


def _sae_options(
    arch: str, width: str, k: int, l1: float, lr: float, tokens: int, batch_size: int, splice_texts: int,
    load: str | None,
) -> object:  # fmt: skip
    """The ``sae`` method's options from the ``--sae-*`` flags (audit and sweep)."""
    from auditkit.audit.options import SAEAuditOptions, parse_width

    expansion, f = parse_width(width)
    return SAEAuditOptions(
        architecture=arch, expansion_factor=expansion, width=f, k=k, l1_coefficient=l1, lr=lr,
        training_tokens=tokens, batch_size=batch_size, splice_texts=splice_texts, load=load,
    )  # fmt: skip


def _executor_options(executor: Executor, address: str | None, cpus: float, gpus: float, workers: int | None) -> object:
    from auditkit.sweep.executors import ExecutorOptions

    return ExecutorOptions(executor=executor.value, ray_address=address, num_cpus=cpus, num_gpus=gpus, workers=workers)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _probe_specs(value: str) -> tuple[str, ...]:
    """Comma-separated probe kinds; the bare integers after a ``k-sparse:k=`` spec continue its list
    (``logistic,k-sparse:k=1,5,20,mlp`` is three kinds)."""
    out: list[str] = []
    for item in _csv(value):
        if item.isdigit() and out and "k=" in out[-1]:
            out[-1] += "," + item
        else:
            out.append(item)
    return tuple(out)


def _seeds(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in _csv(value))
    except ValueError:
        raise AuditkitError(f"--seeds {value!r} is not a comma-separated list of integers (e.g. 0,1,2)") from None


def _one_line_errors(func: Callable[..., None]) -> Callable[..., None]:
    """Turn an AuditkitError into one line on stderr and exit code 2 (only the CLI does this)."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            func(*args, **kwargs)
        except AuditkitError as exc:
            raise _fail(str(exc)) from None

    return wrapper


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command()
@_one_line_errors
def audit(
    model: Annotated[
        str, typer.Option(help="Model: smollm2-135m, a TransformerLens name, a local HF folder, tiny-gpt2.")
    ] = "smollm2-135m",
    dataset: Annotated[
        str, typer.Option(help="sae-probes:TAG, conllu:PATH or table:PATH_OR_HUB_ID.")
    ] = "sae-probes:92_glue_sst2",
    hook: Annotated[
        Optional[str], typer.Option(help="TransformerLens hook; default blocks.{n_layers//2}.hook_resid_pre.")
    ] = None,
    positions: Annotated[Positions, typer.Option(help="Which token positions become rows.")] = Positions.auto,
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = "probe",
    controls: Annotated[
        Optional[str],
        typer.Option(
            help="Comma-separated controls (default: every control that applies); sae-untrained, "
            "sae-frozen-decoder, pca and identity are the sae method's own (other methods skip them)."
        ),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (>= 3 for intervals).")] = "0,1,2",
    max_examples: Annotated[
        int, typer.Option(help="Distinct texts used (0 = all); a repeated text counts once.")
    ] = 1000,
    duplicates: Annotated[
        Duplicates,
        typer.Option(
            help="Copies of a text are one example; copies whose labels disagree: group (keep), drop-conflicts, dedupe (one label per text)."
        ),
    ] = Duplicates.group,
    align: Annotated[Align, typer.Option(help="Sub-token a word's label sits on (token-level data).")] = Align.first,
    gaussian_keep_embeddings: Annotated[bool, typer.Option(help="gaussian-reinit keeps W_E, W_pos, W_U.")] = False,
    max_length: Annotated[int, typer.Option(help="Tokens per text, BOS included.")] = 128,
    test_fraction: Annotated[float, typer.Option(help="Share of examples held out.")] = 0.25,
    probe_c: Annotated[float, typer.Option("--probe-c", help="Inverse L2 strength of the logistic probe.")] = 1.0,
    dictionary: Annotated[
        DictionaryKind,
        typer.Option(
            help="--methods pursuit: embed (W_E rows), unembed (W_U columns), sae (a TopK SAE trained per arm, or --pursuit-sae), probe (logistic-probe directions)."
        ),
    ] = DictionaryKind.embed,
    pursuit_solver: Annotated[PursuitSolver, typer.Option(help="--methods pursuit: sparse coder.")] = PursuitSolver.omp,
    pursuit_k: Annotated[
        str, typer.Option(help="--methods pursuit: target L0 sweep of omp/gradient; the largest feeds the code probe.")
    ] = "1,2,4,8",
    pursuit_alphas: Annotated[
        str, typer.Option(help="--methods pursuit: lasso penalties as fractions of alpha_max.")
    ] = "0.5,0.3,0.2",
    pursuit_sae: Annotated[
        Optional[str],
        typer.Option(help="--dictionary sae: a saved SAE folder or release instead of training one per arm."),
    ] = None,
    pursuit_no_center: Annotated[
        bool, typer.Option(help="--methods pursuit: code raw activations, not activations minus their mean.")
    ] = False,
    probes: Annotated[
        str, typer.Option(help="Probe kinds for --methods probe (k-sparse:k=1,5,20 chooses the ks).")
    ] = "logistic,mass-mean,lda,low-rank,mlp,k-sparse",
    mdl: Annotated[
        bool,
        typer.Option(
            help="--methods probe: also score each dense probe kind by its online codelength (MDL) and compression."
        ),
    ] = False,
    mdl_schedule: Annotated[
        str, typer.Option(help="--mdl: block ends as fractions of the training rows (default 0.1% doubling to 100%).")
    ] = "0.001,0.002,0.004,0.008,0.016,0.032,0.0625,0.125,0.25,0.5,1",
    matrix: Annotated[
        Optional[str],
        typer.Option(help="W_E or W_U: probe embedding rows for --dataset token-properties:PROP (or :all)."),
    ] = None,
    vocab_sample: Annotated[int, typer.Option(help="Vocabulary tokens sampled as rows of a --matrix audit.")] = 20000,
    text_column: Annotated[str, typer.Option(help="Text column of a table: dataset.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column of a table: dataset.")] = "label",
    revision: Annotated[Optional[str], typer.Option(help="Hub revision / Pythia checkpoint (step0).")] = None,
    processed: Annotated[bool, typer.Option(help="Apply TransformerLens weight processing.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 16,
    no_cache: Annotated[
        bool, typer.Option(help="Neither read nor write the cache (activations, converted model).")
    ] = False,
    cache_dir: Annotated[
        Optional[Path], typer.Option(help="Cache root (default $AUDITKIT_CACHE or ~/.cache/auditkit).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/default"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress messages.")] = False,
    sae_arch: SaeArchOption = "topk",
    sae_width: SaeWidthOption = "2x",
    sae_k: SaeKOption = 32,
    sae_l1: SaeL1Option = 5.0,
    sae_lr: SaeLrOption = 1e-3,
    sae_tokens: SaeTokensOption = 49_152,
    sae_batch_size: SaeBatchOption = 128,
    sae_splice_texts: SaeSpliceOption = 16,
    sae_load: SaeLoadOption = None,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = Dtype.float32,
    executor: ExecutorOption = Executor.local,
    ray_address: RayAddressOption = None,
    ray_cpus: RayCpusOption = 1.0,
    ray_gpus: RayGpusOption = 0.0,
    ray_workers: RayWorkersOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Audit a feature-finding method against its controls and write a report."""
    from auditkit.cli.reproduce import reproduce_command

    from auditkit.audit.config import AuditConfig, input_paths
    from auditkit.audit.run import run_audit
    from auditkit.models import ModelSpec
    from auditkit.report.outputs import check_output
    from auditkit.report.write import write_outputs

    _setup_logging(verbose)
    options = _executor_options(executor, ray_address, ray_cpus, ray_gpus, ray_workers)
    pursuit = PursuitAuditOptions(
        dictionary=dictionary.value, solver=pursuit_solver.value, ks=parse_list(pursuit_k, int, "--pursuit-k"),
        alphas=parse_list(pursuit_alphas, float, "--pursuit-alphas"), sae_path=pursuit_sae, center=not pursuit_no_center,
    )  # fmt: skip
    sae_options = _sae_options(sae_arch, sae_width, sae_k, sae_l1, sae_lr, sae_tokens, sae_batch_size,
                               sae_splice_texts, sae_load)  # fmt: skip
    cfg = AuditConfig(
        model=ModelSpec(name=model, revision=revision, processed=processed, cache_dir=cache_dir, use_cache=not no_cache,
                        device=device, dtype=dtype.value),
        dataset=dataset, hook=hook, positions=positions.value, methods=_csv(methods),
        controls=None if controls is None else _csv(controls), seeds=_seeds(seeds), max_examples=max_examples or None,
        max_length=max_length, test_fraction=test_fraction,
        probe_C=probe_c, probes=_probe_specs(probes), matrix=matrix, vocab_sample=vocab_sample, text_column=text_column,
        label_column=label_column, batch_size=batch_size, use_cache=not no_cache, align=align.value,
        gaussian_keep_embeddings=gaussian_keep_embeddings, pursuit=pursuit, sae=sae_options, duplicates=duplicates.value,
        mdl=mdl, mdl_schedule=parse_list(mdl_schedule, float, "--mdl-schedule"),
    )  # fmt: skip
    check_output(out, inputs=input_paths(cfg), cache_dir=cache_dir)  # before anything is loaded or computed
    if matrix is not None and dataset.endswith(":all"):
        return _matrix_all(cfg, out, quiet)
    if options.executor == "local":
        result = run_audit(cfg)
    else:
        from auditkit.sweep.run import run_audit_with

        result = run_audit_with(cfg, options)
    path = write_outputs(result, out, reproduce_command(cfg, out))
    _print_verdicts(result, path, quiet, f"{result.timings['total_s']:.0f} s")


def _print_verdicts(result: object, path: Path, quiet: bool, note: str = "") -> None:
    """The verdict matrix as a compact table, then the report's path; ``quiet``: the path only."""
    from auditkit.report.summary import terminal_table

    _print_table(lambda: terminal_table(result), Path(path) / "report.md", quiet, note)


def _print_table(
    table: Callable[[], object], report: Path, quiet: bool, note: str = "", legend: str | None = None
) -> None:
    """A compact ``rich`` matrix (built by ``table``), its legend (the verdict marks by default), then the
    report's path; ``quiet``: the path only (no matrix is built)."""
    from auditkit.report.summary import TERMINAL_LEGEND
    from auditkit.shell import display_path

    shown = display_path(report)
    if quiet:
        typer.echo(shown)
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False, width=200)
    console.print(table())
    typer.echo(TERMINAL_LEGEND if legend is None else legend)
    typer.echo(f"report: {shown}" + (f" ({note})" if note else ""))


def _matrix_all(cfg: object, out: Path, quiet: bool = False) -> None:
    """``--matrix ... --dataset token-properties:all``: one audit per property into ``out/<property>/``, plus
    ``out/summary.md``; prints the properties' verdict matrix and the summary's path."""
    from auditkit.cli.reproduce import reproduce_command

    from auditkit.audit.matrix import run_matrix_audits
    from auditkit.report.embedding import terminal_table, write_matrix_summary

    results = run_matrix_audits(cfg)
    commands = {p: reproduce_command(r.config, out / p) for p, r in results.items()}
    path = write_matrix_summary(results, out, commands, reproduce_command(cfg, out))
    _print_table(lambda: terminal_table(results), path / "summary.md", quiet, f"and {len(results)} property reports")


@app.command()
@_one_line_errors
def sweep(
    model: Annotated[
        str, typer.Option(help="Model: smollm2-135m, a TransformerLens name, a local HF folder, tiny-gpt2.")
    ] = "smollm2-135m",
    datasets: Annotated[
        str,
        typer.Option(
            help="Comma-separated dataset specs, a group (sae-probes:binary, sae-probes:all) or a glob (sae-probes:*_news_*)."
        ),
    ] = "sae-probes:92_glue_sst2",
    hooks: Annotated[
        str,
        typer.Option(
            help="all (every block's hook_resid_pre and the final residual), middle, a list, or a range blocks.0-29:2.hook_resid_pre."
        ),
    ] = "all",
    positions: Annotated[Positions, typer.Option(help="Which token positions become rows.")] = Positions.auto,
    methods: Annotated[str, typer.Option(help="Comma-separated methods of every cell.")] = "probe",
    controls: Annotated[
        Optional[str], typer.Option(help="Comma-separated controls (default: every control that applies).")
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (>= 3 for intervals).")] = "0,1,2",
    max_examples: Annotated[int, typer.Option(help="Distinct texts per dataset (0 = all).")] = 1000,
    duplicates: Annotated[
        Duplicates, typer.Option(help="Copies whose labels disagree: group, drop-conflicts, dedupe.")
    ] = Duplicates.group,
    max_length: Annotated[int, typer.Option(help="Tokens per text, BOS included.")] = 128,
    test_fraction: Annotated[float, typer.Option(help="Share of examples held out.")] = 0.25,
    probe_c: Annotated[float, typer.Option("--probe-c", help="Inverse L2 strength of the logistic probe.")] = 1.0,
    probes: Annotated[str, typer.Option(help="Probe kinds of every cell.")] = "logistic,mass-mean",
    mdl: Annotated[bool, typer.Option(help="Also score each dense probe kind by its online codelength (MDL).")] = False,
    mdl_schedule: Annotated[
        str, typer.Option(help="--mdl: block ends as fractions of the training rows (default 0.1% doubling to 100%).")
    ] = "0.001,0.002,0.004,0.008,0.016,0.032,0.0625,0.125,0.25,0.5,1",
    gaussian_keep_embeddings: Annotated[bool, typer.Option(help="gaussian-reinit keeps W_E, W_pos, W_U.")] = False,
    revision: Annotated[Optional[str], typer.Option(help="Hub revision / Pythia checkpoint (step0).")] = None,
    processed: Annotated[bool, typer.Option(help="Apply TransformerLens weight processing.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 16,
    cache_dir: Annotated[
        Optional[Path], typer.Option(help="Cache root (default $AUDITKIT_CACHE or ~/.cache/auditkit).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/sweep"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress messages.")] = False,
    sae_arch: SaeArchOption = "topk",
    sae_width: SaeWidthOption = "2x",
    sae_k: SaeKOption = 32,
    sae_l1: SaeL1Option = 5.0,
    sae_lr: SaeLrOption = 1e-3,
    sae_tokens: SaeTokensOption = 49_152,
    sae_batch_size: SaeBatchOption = 128,
    sae_splice_texts: SaeSpliceOption = 16,
    sae_load: SaeLoadOption = None,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = Dtype.float32,
    executor: ExecutorOption = Executor.local,
    ray_address: RayAddressOption = None,
    ray_cpus: RayCpusOption = 1.0,
    ray_gpus: RayGpusOption = 0.0,
    ray_workers: RayWorkersOption = None,
) -> None:
    """Audit every hook of a list or range, on one or many datasets, in one run; write a summary report."""
    from auditkit.cli.reproduce import sweep_command

    from auditkit.audit.config import AuditConfig
    from auditkit.models import ModelSpec
    from auditkit.report.outputs import check_output
    from auditkit.report.sweep import write_sweep
    from auditkit.sweep.config import SweepConfig
    from auditkit.sweep.run import run_sweep

    _setup_logging(verbose)
    options = _executor_options(executor, ray_address, ray_cpus, ray_gpus, ray_workers)
    audit_cfg = AuditConfig(
        model=ModelSpec(name=model, revision=revision, processed=processed, cache_dir=cache_dir, device=device,
                        dtype=dtype.value),
        positions=positions.value, methods=_csv(methods), controls=None if controls is None else _csv(controls),
        seeds=_seeds(seeds), max_examples=max_examples or None, max_length=max_length, test_fraction=test_fraction,
        probe_C=probe_c, probes=_probe_specs(probes), batch_size=batch_size, duplicates=duplicates.value,
        gaussian_keep_embeddings=gaussian_keep_embeddings, mdl=mdl,
        mdl_schedule=parse_list(mdl_schedule, float, "--mdl-schedule"),
        sae=_sae_options(sae_arch, sae_width, sae_k, sae_l1, sae_lr, sae_tokens, sae_batch_size, sae_splice_texts,
                         sae_load),
    )  # fmt: skip
    cfg = SweepConfig(audit=audit_cfg, datasets=datasets, hooks=hooks)
    inputs = [model, *(d.partition(":")[2] for d in _csv(datasets) if d.startswith(("conllu:", "table:")))]
    check_output(out, inputs=inputs, cache_dir=cache_dir)  # before anything is loaded or computed
    result = run_sweep(cfg, executor=options)
    path = write_sweep(result, out, sweep_command(cfg, out))
    typer.echo(f"wrote {path}/summary.md, results.csv, selectivity.csv, run.json ({result.timings['total_s']:.0f} s, "
               f"{len(result.datasets)} datasets x {len(result.hooks)} hooks)")  # fmt: skip
    for line in result.failures:  # one line per failed cell; the report holds every other cell
        typer.echo(" ".join(f"error: cell {line}".split())[:MAX_ERROR_CHARS], err=True)
    if result.failures:
        raise typer.Exit(1)


@app.command()
@_one_line_errors
def models() -> None:
    """List loadable models and mark what is available offline."""
    from auditkit.models import list_models

    for info in list_models():
        mark = "offline" if info.available_offline else "hub"
        typer.echo(f"{info.name:45s} {info.source:14s} {mark:8s} {info.note}")


@app.command()
@_one_line_errors
def datasets(
    kind: Annotated[DatasetKind, typer.Option(help="Which sae-probes datasets to list.")] = DatasetKind.classification,
) -> None:
    """List the labelled datasets shipped offline, and the other dataset sources."""
    from auditkit.data import list_sae_probes

    table = list_sae_probes(kind.value)
    for row in table.itertuples(index=False):
        typer.echo(f"sae-probes:{row.tag:45s} {row.kind:11s} offline")
    typer.echo("conllu:PATH                                          token-level UPOS from a CoNLL-U file")
    typer.echo("table:PATH_OR_HUB_ID                                 CSV/JSONL/parquet file, or a datasets id (hub)")
    typer.echo("token-properties:PROP|all                            token-string labels of vocabulary rows (--matrix)")


@app.command()
@_one_line_errors
def hooks(
    model: Annotated[str, typer.Argument(help="Model spec, as for audit.")] = "smollm2-135m",
    contains: Annotated[str, typer.Option(help="Only hooks whose name contains this.")] = "",
    no_cache: Annotated[bool, typer.Option(help="Convert the embedded model without caching it.")] = False,
) -> None:
    """List the TransformerLens hook names of a model."""
    from auditkit.models import ModelSpec, load_model

    loaded = load_model(ModelSpec(name=model, use_cache=not no_cache))
    for name in loaded.model.hook_dict:
        if contains in name:
            typer.echo(name)


@app.command()
@_one_line_errors
def validate(
    full: Annotated[bool, typer.Option(help="Run the full calibration (slower) instead of the fast one.")] = False,
    seed: Annotated[int, typer.Option(help="Root seed of the calibration.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/validate"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Calibrate the auditor offline: false-positive rate and power of its label verdicts (probe kinds, SAE k-sparse probing, pursuit code probe) on planted data."""
    from auditkit.calibration.run import run_validate
    from auditkit.report.calibration import write_calibration
    from auditkit.report.outputs import check_output
    from auditkit.shell import command_line

    check_output(out)  # before the calibration's minutes of compute
    result = run_validate(fast=not full, seed=seed, progress=True)
    command = command_line(["auditkit", "validate"], [("--full", full), ("--seed", seed), ("--out", out)])
    path = write_calibration(result, out, command=command)
    _print_calibration(result, path, quiet)


def _print_calibration(result: object, path: Path, quiet: bool) -> None:
    from auditkit.report.calibration_matrix import TERMINAL_LEGEND, terminal_table

    _print_table(lambda: terminal_table(result), Path(path) / "report.md", quiet, legend=TERMINAL_LEGEND)


@app.command()
@_one_line_errors
def steer(
    model: Annotated[str, typer.Option(help="Model spec, as for audit.")] = "smollm2-135m",
    datasets: Annotated[
        str, typer.Option(help="Comma-separated sae-probes tags (one multiclass or several binary).")
    ] = "17_world_country",
    hook: Annotated[Optional[str], typer.Option(help="Hook to write at; default the middle resid_pre.")] = None,
    later_hook: Annotated[Optional[str], typer.Option(help="Later hook to read effects at.")] = None,
    max_examples: Annotated[int, typer.Option(help="Texts used (0 = all).")] = 300,
    alphas: Annotated[str, typer.Option(help="Comma-separated doses.")] = "0,0.03125,0.0625,0.125,0.25",
    scale: Annotated[str, typer.Option(help="Dose unit: norm or gap.")] = "norm",
    positions: Annotated[str, typer.Option(help="Steer all positions or the last.")] = "all",
    controls: Annotated[str, typer.Option(help="spectral-reinit, gaussian-reinit, or none.")] = "spectral-reinit",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    cache_dir: Annotated[Optional[Path], typer.Option(help="Cache root.")] = None,
    no_cache: Annotated[bool, typer.Option(help="Convert the embedded model without caching it.")] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/steering"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Compare probe, mass-mean, LDA and dual-basis directions by what they do when written."""
    from auditkit.models import ModelSpec
    from auditkit.report.outputs import check_output
    from auditkit.report.steering import write_steering
    from auditkit.steering.run import SteeringConfig, run_steering

    try:
        alpha_values = tuple(float(a) for a in _csv(alphas))
    except ValueError:
        raise AuditkitError(f"--alphas {alphas!r} is not a comma-separated list of numbers") from None
    if not _csv(controls):
        raise AuditkitError(f"--controls {controls!r} names no control: pass spectral-reinit, gaussian-reinit or none")
    cfg = SteeringConfig(
        model=ModelSpec(name=model, cache_dir=cache_dir, use_cache=not no_cache), datasets=_csv(datasets), hook=hook, later_hook=later_hook,
        max_examples=max_examples or None, alphas=alpha_values, scale=scale, positions=positions,
        controls=() if controls == "none" else _csv(controls), seeds=_seeds(seeds),
    )  # fmt: skip
    check_output(out, inputs=(model,), cache_dir=cache_dir)  # before anything is loaded or computed
    result = run_steering(cfg)
    path = write_steering(result, out)
    _print_steering(result, path, quiet)


def _print_steering(result: object, path: Path, quiet: bool) -> None:
    from auditkit.report.steering import terminal_table

    _print_table(lambda: terminal_table(result), Path(path) / "steering.md", quiet)


@app.command()
@_one_line_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="An `auditkit audit`, `sweep`, `validate` or `steer` output folder.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Re-render the report and figures of an audit (results.csv, selectivity.csv, run.json), a token-properties:all
    matrix audit (its summary and every property), a sweep (summary.md from its tables and run.json), a
    calibration (fpr.csv, power.csv, run.json) or a steering comparison (steering.csv, steering.json).

    Nothing is recomputed: verdicts and rates are read as written. Writes in place, atomically, and only in a
    folder auditkit wrote."""
    from auditkit.report.outputs import output_kind

    folder, kind = output_kind(run_dir)
    if kind == "validate":
        from auditkit.calibration.saved import load_calibration
        from auditkit.report.calibration import rerender_calibration

        calibration, run = load_calibration(folder)
        return _print_calibration(calibration, rerender_calibration(calibration, folder, run["command"]), quiet)
    if kind == "steer":
        from auditkit.report.steering import rerender_steering
        from auditkit.steering.saved import load_steering

        steering = load_steering(folder)
        return _print_steering(steering, rerender_steering(steering, folder), quiet)
    if kind == "sweep":
        from auditkit.report.sweep import rerender_sweep
        from auditkit.shell import display_path
        from auditkit.sweep.saved import load_sweep

        swept, run = load_sweep(folder)
        rerender_sweep(swept, folder, run["command"])
        typer.echo(f"{'' if quiet else 'summary: '}{display_path(folder / 'summary.md')}")
        return None
    from auditkit.audit.saved import is_matrix_output, load_matrix, load_run
    from auditkit.report.write import rerender_outputs

    if is_matrix_output(folder):
        from auditkit.report.embedding import rerender_matrix_summary, terminal_table

        loaded = load_matrix(folder)
        path = rerender_matrix_summary(loaded, folder)
        results = {p: r for p, (r, _) in loaded.items()}
        return _print_table(lambda: terminal_table(results), path / "summary.md", quiet)
    result, run = load_run(folder)
    _print_verdicts(result, rerender_outputs(result, folder, run["command"]), quiet)


@app.command()
@_one_line_errors
def compare(
    run_a: Annotated[Path, typer.Argument(help="An `auditkit audit` output folder (A).")],
    run_b: Annotated[Path, typer.Argument(help="Another one (B).")],
    out: Annotated[
        Optional[Path], typer.Option(help="Write the markdown here (a new file) instead of printing it.")
    ] = None,
    top: Annotated[int, typer.Option(help="Largest selectivity deltas listed.")] = 10,
) -> None:
    """A short markdown diff of two audits: settings that differ, verdicts that changed, selectivity deltas."""
    from auditkit.audit.saved import load_run
    from auditkit.report.compare import render_compare
    from auditkit.report.outputs import check_audit_output
    from auditkit.shell import display_path

    (a, run_1), (b, run_2) = (load_run(check_audit_output(p)) for p in (run_a, run_b))
    text = render_compare(display_path(run_a), run_1, a.selectivity, display_path(run_b), run_2, b.selectivity, top)
    if out is None:
        typer.echo(text)
        return
    if out.exists() or out.is_symlink():
        raise AuditkitError(f"--out {str(out)!r} exists: give a new file name (auditkit never overwrites a file)")
    if not out.parent.is_dir():
        raise AuditkitError(f"--out {str(out)!r}: its folder does not exist")
    out.write_text(text)
    typer.echo(display_path(out))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
