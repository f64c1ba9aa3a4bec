"""``auditkit sweep``: many hooks and datasets in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import MAX_ERROR_CHARS, one_line_errors, setup_logging
from auditkit.cli.options import (
    DeviceOption,
    Dtype,
    DtypeOption,
    Duplicates,
    Executor,
    ExecutorOption,
    Positions,
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


@one_line_errors
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
        str | None,
        typer.Option(
            help="Comma-separated controls (default: every control that applies to the "
            "methods and each dataset's level, as in `auditkit audit`)."
        ),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (>= 3 for intervals).")] = "0,1,2",
    max_examples: Annotated[int, typer.Option(help="Distinct texts per dataset (0 = all).")] = 1000,
    duplicates: Annotated[
        Duplicates, typer.Option(help="Copies whose labels disagree: group, drop-conflicts, dedupe.")
    ] = Duplicates.group,
    max_length: Annotated[int, typer.Option(help="Tokens per text, BOS included.")] = 128,
    test_fraction: Annotated[float, typer.Option(help="Share of examples held out.")] = 0.25,
    label_draws: Annotated[
        int, typer.Option(help="Draws of each label control per seed (one more stacked fit each; no forward pass).")
    ] = 10,
    weight_draws: Annotated[
        int, typer.Option(help="Draws of each reinitialised model per seed (one forward pass each).")
    ] = 1,
    probe_c: Annotated[float, typer.Option("--probe-c", help="Inverse L2 strength of the logistic probe.")] = 1.0,
    probes: Annotated[str, typer.Option(help="Probe kinds of every cell.")] = "logistic,mass-mean",
    mdl: Annotated[bool, typer.Option(help="Also score each dense probe kind by its online codelength (MDL).")] = False,
    mdl_schedule: Annotated[
        str, typer.Option(help="--mdl: block ends as fractions of the training rows (default 0.1% doubling to 100%).")
    ] = "0.001,0.002,0.004,0.008,0.016,0.032,0.0625,0.125,0.25,0.5,1",
    gaussian_keep_embeddings: Annotated[bool, typer.Option(help="gaussian-reinit keeps W_E, W_pos, W_U.")] = False,
    revision: Annotated[str | None, typer.Option(help="Hub revision / Pythia checkpoint (step0).")] = None,
    processed: Annotated[bool, typer.Option(help="Apply TransformerLens weight processing.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 16,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Cache root (default $AUDITKIT_CACHE or ~/.cache/auditkit).")
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
    from auditkit.data import kinds as dataset_kinds
    from auditkit.models import ModelSpec
    from auditkit.report.outputs import check_output
    from auditkit.report.sweep import write_sweep
    from auditkit.sweep.config import SweepConfig
    from auditkit.sweep.run import run_sweep

    setup_logging(verbose)
    options = executor_options(executor, ray_address, ray_cpus, ray_gpus, ray_workers)
    audit_cfg = AuditConfig(
        model=ModelSpec(
            name=model, revision=revision, processed=processed, cache_dir=cache_dir, device=device, dtype=dtype.value
        ),
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
        batch_size=batch_size,
        duplicates=duplicates.value,
        gaussian_keep_embeddings=gaussian_keep_embeddings,
        mdl=mdl,
        mdl_schedule=parse_list(mdl_schedule, float, "--mdl-schedule"),
        sae=sae_audit_options(
            sae_arch, sae_width, sae_k, sae_l1, sae_lr, sae_tokens, sae_batch_size, sae_splice_texts, sae_load
        ),
    )
    cfg = SweepConfig(audit=audit_cfg, datasets=datasets, hooks=hooks)
    inputs = [model, *filter(None, map(dataset_kinds.local_path, csv_items(datasets)))]
    check_output(out, inputs=inputs, cache_dir=cache_dir, kind="sweep")  # before anything is loaded or computed
    result = run_sweep(cfg, executor=options)
    path = write_sweep(result, out, sweep_command(cfg, out))
    typer.echo(
        f"wrote {path}/summary.md, results.csv, selectivity.csv, run.json ({result.timings['total_s']:.0f} s, "
        f"{len(result.datasets)} datasets x {len(result.hooks)} hooks)"
    )
    for line in result.failures:  # one line per failed cell; the report holds every other cell
        typer.echo(" ".join(f"error: cell {line}".split())[:MAX_ERROR_CHARS], err=True)
    if result.failures:
        raise typer.Exit(1)
