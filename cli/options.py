"""How option values are read and written: the parsers of comma-separated values (every command's), and the
converters the flags of :mod:`auditkit.cli.flags` name (command-line value -> config field, config field ->
reproduce-command value, and when the reproduce command writes a flag)."""

from __future__ import annotations

import typing
from enum import Enum
from typing import Any

from auditkit.cli.declare import Context, path_value

from auditkit.audit.options import parse_width
from auditkit.errors import AuditkitError, ConfigError


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


# --- the flags' converters -------------------------------------------------------------------------------------


def ints(value: str, flag: str) -> tuple[int, ...]:
    return parse_list(value, int, flag)


def floats(value: str, flag: str) -> tuple[float, ...]:
    return parse_list(value, float, flag)


def floats_or_none(value: str, flag: str) -> tuple[float, ...]:
    """A list of numbers, or ``none`` for the empty list (``--probe-c-grid none``: no C is chosen)."""
    return () if value.strip().lower() == "none" else floats(value, flag)


def as_floats_or_none(value: tuple[float, ...], ctx: Any) -> tuple[float, ...] | str:
    """The list as any list of numbers is written (in full, not rounded), or ``none`` for the empty one."""
    return value if value else "none"


def csv(value: str, flag: str) -> tuple[str, ...]:
    return csv_items(value)


def optional_csv(value: str | None, flag: str) -> tuple[str, ...] | None:
    return None if value is None else csv_items(value)


def zero_is_all(value: int, flag: str) -> int | None:
    return value or None


def numbers(value: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(a) for a in csv_items(value))
    except ValueError:
        raise AuditkitError(f"{flag} {value!r} is not a comma-separated list of numbers") from None


def steering_controls(value: str, flag: str) -> tuple[str, ...]:
    """``auditkit steer``'s weight controls; ``none`` runs none (an empty value is a mistake, never "none")."""
    if not csv_items(value):
        raise AuditkitError(f"{flag} {value!r} names no control: pass spectral-reinit, gaussian-reinit or none")
    return () if value == "none" else csv_items(value)


def negate(value: bool, flag: str) -> bool:
    return not value


def sae_width_fields(value: str, flag: str) -> dict[str, Any]:
    expansion, width = parse_width(value)
    return {"expansion_factor": expansion, "width": width}


def as_float(value: Any, ctx: Context) -> float:
    return float(value)


def or_none(value: Any, ctx: Context) -> Any:
    return value or None


def as_path(value: Any, ctx: Context) -> Any:
    return path_value(value) if value else None


def dataset_spec(value: str, ctx: Context) -> str:
    from auditkit.data import kinds as dataset_kinds

    path = dataset_kinds.local_path(value)
    return f"{value.partition(':')[0]}:{path_value(path)}" if path else value


def all_is_zero(value: int | None, ctx: Context) -> int:
    return 0 if value is None else value


def negated(value: bool, ctx: Context) -> bool:
    return not value


def sae_width(value: Any, ctx: Context) -> str:
    sae = ctx.owner
    return str(sae.width) if sae.width is not None else f"{float(sae.expansion_factor)!r}x"


def audit_controls(value: Any, ctx: Context) -> tuple[str, ...]:
    """The controls the audit ran: the named ones, else the defaults for its methods and data level."""
    from auditkit.audit.run import resolve_controls, spec_level

    return resolve_controls(ctx.audit, spec_level(ctx.audit.dataset))


def sweep_controls(value: Any, ctx: Context) -> tuple[str, ...] | None:
    """The sweep's controls: the named ones, else its datasets' level's defaults; None (left to the defaults) when
    its datasets are of both levels, whose defaults differ."""
    from auditkit.audit.run import resolve_controls, spec_level
    from auditkit.sweep.plan import resolve_datasets

    levels = {spec_level(d) for d in resolve_datasets(ctx.root.datasets)}
    if ctx.audit.controls is None and len(levels) > 1:
        return None
    return resolve_controls(ctx.audit, levels.pop() if levels else None)


def for_method(name: str) -> typing.Callable[[Context], bool]:
    """Written when the audit runs method ``name`` (its options mean nothing otherwise)."""
    return lambda ctx: name in ctx.audit.methods


def pursuit_sweep(greedy: bool) -> typing.Callable[[Context], bool]:
    """The L0 sweep of the greedy solvers, or the penalty sweep of the lasso ones: whichever the solver reads."""
    return lambda ctx: "pursuit" in ctx.audit.methods and (ctx.owner.solver in ("omp", "gradient")) == greedy


def table_or_changed(ctx: Context) -> bool:
    return ctx.changed or ctx.owner.dataset.startswith("table:")


def custom_schedule(ctx: Context) -> bool:
    return ctx.owner.mdl and ctx.changed


def has_matrix(ctx: Context) -> bool:
    return ctx.owner.matrix is not None
