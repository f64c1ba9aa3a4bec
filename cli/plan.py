"""``auditkit plan``: how many texts an audit needs to detect an effect at a power, from a saved audit (the
pilot) or from a stated design (expected accuracies of the real arm and the control)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors

from auditkit.errors import AuditkitError
from auditkit.metrics.planning import MAX_TEXTS

ASSUMPTIONS = (
    "Standard errors scale as 1/sqrt(test texts x seeds), test texts = round(texts x test fraction); a pilot's "
    "between-seed spread is assumed to shrink as fast (docs/planning.md)."
)


def _check(effect: float, power: float, seeds: int | None, test_fraction: float | None, max_texts: int) -> None:
    if not effect > 0:
        raise AuditkitError(f"--effect must be above 0, got {effect:g}: the selectivity to detect, e.g. --effect 0.10")
    if not 0 < power < 1:
        raise AuditkitError(f"--power must be in (0, 1), got {power:g}: e.g. --power 0.8")
    if seeds is not None and seeds < 1:
        raise AuditkitError(f"--seeds must be at least 1, got {seeds}: e.g. --seeds 3")
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise AuditkitError(f"--test-fraction must be in (0, 1), got {test_fraction:g}: e.g. --test-fraction 0.25")
    if max_texts < 1:
        raise AuditkitError(f"--max-texts must be at least 1, got {max_texts}")


@one_line_errors
def plan(
    run_dir: Annotated[
        Path | None,
        typer.Argument(
            help="An `auditkit audit` output folder, the pilot. Leave out to plan from --real and --control."
        ),
    ] = None,
    effect: Annotated[
        float, typer.Option(help="The true selectivity to detect, in the metric's units (e.g. 0.10 accuracy).")
    ] = ...,  # type: ignore[assignment]
    power: Annotated[float, typer.Option(help="Power to reach: the share of audits that call it selective.")] = 0.8,
    seeds: Annotated[
        int | None, typer.Option(help="Seeds of the planned audit [default: the pilot's; 3 for a stated design].")
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            help="With RUN_DIR: plan only this control. Without: the control's expected accuracy (e.g. 0.65)."
        ),
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="With RUN_DIR: plan only this method (e.g. probe-logistic).")
    ] = None,
    metric: Annotated[str, typer.Option(help="With RUN_DIR: the metric whose rows are planned.")] = "accuracy",
    real: Annotated[
        float | None, typer.Option(help="Without RUN_DIR: the real arm's expected accuracy (e.g. 0.75).")
    ] = None,
    test_fraction: Annotated[
        float | None,
        typer.Option(
            help="Share of texts held out in the planned audit [default: the pilot's; 0.25 for a stated design]."
        ),
    ] = None,
    max_texts: Annotated[int, typer.Option(help="Search no further than this many texts.")] = MAX_TEXTS,
) -> None:
    """How many texts an audit needs to detect a selectivity of --effect with --power: per (method, control) row
    of a saved audit, its minimum detectable effect, its power at --effect, and the texts needed; or, without an
    audit, the texts needed by a stated design (--real and --control accuracies, independent errors)."""
    _check(effect, power, seeds, test_fraction, max_texts)
    if run_dir is None:
        return _stated(real, control, effect, power, seeds, test_fraction, max_texts)
    if real is not None:
        raise AuditkitError("--real states a design without an audit: give either RUN_DIR or --real and --control")
    from auditkit.audit.saved import load_run
    from auditkit.metrics.planning import plan_table
    from auditkit.report.outputs import check_audit_output
    from auditkit.report.planning import plan_terminal_table
    from auditkit.shell import display_path

    result, run = load_run(check_audit_output(run_dir, "plan"))
    cfg = result.config
    texts = run.get("dataset", {}).get("n_texts") if isinstance(run.get("dataset"), dict) else None
    if not isinstance(texts, int) or texts < 1:
        raise AuditkitError(
            f"{display_path(run_dir)}/run.json records no dataset n_texts: rerun the audit to plan from it"
        )
    table = plan_table(
        result.selectivity,
        metric=metric,
        texts=texts,
        test_fraction=cfg.test_fraction,
        effect=effect,
        power=power,
        seeds=seeds,
        plan_fraction=test_fraction,
        method=method,
        control=control,
        max_texts=max_texts,
        threshold=cfg.selectivity_threshold,
    )
    n_test = int(round(texts * cfg.test_fraction))
    typer.echo(
        f"pilot: {display_path(run_dir)}, {metric}: {texts:,} texts ({n_test:,} test texts per seed), "
        f"{len(cfg.seeds)} seeds"
    )
    from rich.console import Console

    planned = f"{seeds} seeds" if seeds else "pilot's seeds"
    Console(highlight=False, soft_wrap=False, width=200).print(
        plan_terminal_table(table, effect=effect, power=power, seeds=planned, max_texts=max_texts)
    )
    typer.echo(
        f"MDE and power at the pilot's size; texts needed at {planned if seeds else 'the ' + planned}"
        f"{'' if test_fraction is None else f', test fraction {test_fraction:g}'}. {ASSUMPTIONS}"
    )


def _stated(
    real: float | None,
    control: str | None,
    effect: float,
    power: float,
    seeds: int | None,
    test_fraction: float | None,
    max_texts: int,
) -> None:
    """A stated design: --real and --control accuracies, no pilot."""
    from auditkit.audit.config import AuditConfig
    from auditkit.metrics.planning import stated_design, texts_needed
    from auditkit.report.planning import design_terminal_table

    if real is None or control is None:
        raise AuditkitError(
            "give an audit folder (RUN_DIR) to plan from, or state a design with --real and "
            "--control accuracies, e.g. --real 0.75 --control 0.65"
        )
    try:
        p_control = float(control)
    except ValueError:
        raise AuditkitError(
            f"--control {control!r} without RUN_DIR is the control's expected accuracy: give a number "
            "such as 0.65 (a control's name needs an audit folder)"
        ) from None
    defaults = AuditConfig()  # the audit's own defaults
    seeds = seeds or len(defaults.seeds)
    fraction = defaults.test_fraction if test_fraction is None else test_fraction
    design = stated_design(real, p_control)
    needed = texts_needed(
        design,
        effect,
        power,
        seeds=seeds,
        test_fraction=fraction,
        max_texts=max_texts,
        threshold=defaults.selectivity_threshold,
    )
    from rich.console import Console

    Console(highlight=False, soft_wrap=False, width=200).print(
        design_terminal_table(
            real,
            p_control,
            seeds=seeds,
            test_fraction=fraction,
            needed=needed,
            max_texts=max_texts,
            power=power,
            effect=effect,
        )
    )
    typer.echo(
        "Per-text paired variance p_real(1-p_real) + p_control(1-p_control): independent errors, an upper "
        f"bound when the arms' errors are positively correlated (docs/planning.md). Test fraction {fraction:g}."
    )
