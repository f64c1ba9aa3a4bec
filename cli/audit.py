"""``auditkit audit``: one audit, or a matrix of token properties x controls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors, setup_logging
from auditkit.cli.options import (
    Align,
    DeviceOption,
    DictionaryKind,
    Dtype,
    DtypeOption,
    Duplicates,
    Executor,
    ExecutorOption,
    Positions,
    PursuitSolver,
    RayAddressOption,
    RayCpusOption,
    RayGpusOption,
    RayWorkersOption,
    SaeArchOption,
    SaeBatchOption,
    SaeKOption,
    SaeL1Option,
    SaeLoadOption,
    SaeLrOption,
    SaeSpliceOption,
    SaeTokensOption,
    SaeWidthOption,
    csv_items,
    executor_options,
    parse_list,
    probe_specs,
    sae_audit_options,
    seeds_list,
)

from auditkit.audit.options import SAE_BASELINES, PursuitAuditOptions
from auditkit.methods.probes import registry as probe_kinds


@one_line_errors
def audit(
    model: Annotated[
        str, typer.Option(help="Model: smollm2-135m, a TransformerLens name, a local HF folder, tiny-gpt2.")
    ] = "smollm2-135m",
    dataset: Annotated[
        str, typer.Option(help="sae-probes:TAG, conllu:PATH or table:PATH_OR_HUB_ID.")
    ] = "sae-probes:92_glue_sst2",
    hook: Annotated[
        str | None, typer.Option(help="TransformerLens hook; default blocks.{n_layers//2}.hook_resid_pre.")
    ] = None,
    positions: Annotated[Positions, typer.Option(help="Which token positions become rows.")] = Positions.auto,
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = "probe",
    controls: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated controls (default: every control that applies to the methods and the data's "
            "level: control-task on token-level data only, lexical-bow and lexical-length on sentence-level data "
            f"only); {', '.join(SAE_BASELINES)} are the sae method's own, the lexical-* baselines the probe "
            "method's (other methods skip them). `auditkit controls` lists them all."
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
    label_draws: Annotated[
        int, typer.Option(help="Draws of each label control per seed (one more stacked fit each; no forward pass).")
    ] = 10,
    weight_draws: Annotated[
        int, typer.Option(help="Draws of each reinitialised model per seed (one forward pass each).")
    ] = 1,
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
        str | None,
        typer.Option(help="--dictionary sae: a saved SAE folder or release instead of training one per arm."),
    ] = None,
    pursuit_no_center: Annotated[
        bool, typer.Option(help="--methods pursuit: code raw activations, not activations minus their mean.")
    ] = False,
    probes: Annotated[
        str, typer.Option(help="Probe kinds for --methods probe (k-sparse:k=1,5,20 chooses the ks).")
    ] = ",".join(probe_kinds.names()),
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
        str | None,
        typer.Option(help="W_E or W_U: probe embedding rows for --dataset token-properties:PROP (or :all)."),
    ] = None,
    vocab_sample: Annotated[int, typer.Option(help="Vocabulary tokens sampled as rows of a --matrix audit.")] = 20000,
    text_column: Annotated[str, typer.Option(help="Text column of a table: dataset.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column of a table: dataset.")] = "label",
    revision: Annotated[str | None, typer.Option(help="Hub revision / Pythia checkpoint (step0).")] = None,
    processed: Annotated[bool, typer.Option(help="Apply TransformerLens weight processing.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 16,
    no_cache: Annotated[
        bool, typer.Option(help="Neither read nor write the cache (activations, converted model).")
    ] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Cache root (default $AUDITKIT_CACHE or ~/.cache/auditkit).")
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
    from auditkit.models import ModelSpec
    from auditkit.report.outputs import check_output
    from auditkit.report.write import write_outputs
    from auditkit.sweep.run import run_audit

    setup_logging(verbose)
    options = executor_options(executor, ray_address, ray_cpus, ray_gpus, ray_workers)
    pursuit = PursuitAuditOptions(
        dictionary=dictionary.value,
        solver=pursuit_solver.value,
        ks=parse_list(pursuit_k, int, "--pursuit-k"),
        alphas=parse_list(pursuit_alphas, float, "--pursuit-alphas"),
        sae_path=pursuit_sae,
        center=not pursuit_no_center,
    )
    sae_options = sae_audit_options(
        sae_arch, sae_width, sae_k, sae_l1, sae_lr, sae_tokens, sae_batch_size, sae_splice_texts, sae_load
    )
    cfg = AuditConfig(
        model=ModelSpec(
            name=model,
            revision=revision,
            processed=processed,
            cache_dir=cache_dir,
            use_cache=not no_cache,
            device=device,
            dtype=dtype.value,
        ),
        dataset=dataset,
        hook=hook,
        positions=positions.value,
        methods=csv_items(methods),
        controls=None if controls is None else csv_items(controls),
        seeds=seeds_list(seeds),
        max_examples=max_examples or None,
        max_length=max_length,
        test_fraction=test_fraction,
        label_draws=label_draws,
        weight_draws=weight_draws,
        probe_C=probe_c,
        probes=probe_specs(probes),
        matrix=matrix,
        vocab_sample=vocab_sample,
        text_column=text_column,
        label_column=label_column,
        batch_size=batch_size,
        use_cache=not no_cache,
        align=align.value,
        gaussian_keep_embeddings=gaussian_keep_embeddings,
        pursuit=pursuit,
        sae=sae_options,
        duplicates=duplicates.value,
        mdl=mdl,
        mdl_schedule=parse_list(mdl_schedule, float, "--mdl-schedule"),
    )
    check_output(
        out, inputs=input_paths(cfg), cache_dir=cache_dir, kind="audit"
    )  # before anything is loaded or computed
    if matrix is not None and dataset.endswith(":all"):
        return matrix_all(cfg, out, quiet)
    result = run_audit(cfg, executor=options)  # a plan of one cell, as a sweep runs: one model variant at a time
    path = write_outputs(result, out, reproduce_command(cfg, out))
    print_verdicts(result, path, quiet, f"{result.timings['total_s']:.0f} s")


def print_verdicts(result: object, path: Path, quiet: bool, note: str = "") -> None:
    """The verdict matrix as a compact table, then the report's path; ``quiet``: the path only."""
    from auditkit.report.summary import terminal_table

    print_table(lambda: terminal_table(result), Path(path) / "report.md", quiet, note)


def print_table(
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


def matrix_all(cfg: object, out: Path, quiet: bool = False) -> None:
    """``--matrix ... --dataset token-properties:all``: one audit per property into ``out/<property>/``, plus
    ``out/summary.md``; prints the properties' verdict matrix and the summary's path."""
    from auditkit.cli.reproduce import reproduce_command

    from auditkit.audit.matrix import run_matrix_audits
    from auditkit.report.embedding import terminal_table, write_matrix_summary

    results = run_matrix_audits(cfg)
    commands = {p: reproduce_command(r.config, out / p) for p, r in results.items()}
    path = write_matrix_summary(results, out, commands, reproduce_command(cfg, out))
    print_table(lambda: terminal_table(results), path / "summary.md", quiet, f"and {len(results)} property reports")
