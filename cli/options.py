"""The options more than one command takes (one definition each), their choices, and the parsers of
comma-separated values."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from auditkit.audit.options import DICTIONARIES, SOLVERS
from auditkit.errors import AuditkitError, ConfigError


def parse_list(value: str, kind: type, option: str) -> tuple:
    """``"1,2,4"`` -> ``(1, 2, 4)`` as ``kind``; a bad item raises a one-line ConfigError."""
    try:
        return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a comma-separated list of {kind.__name__}s") from None


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
    str | None,
    typer.Option(help="--executor ray: auto (this machine's cluster) or HOST:PORT; default a new local one."),
]
RayCpusOption = Annotated[float, typer.Option(help="--executor ray: CPUs per actor (its torch threads).")]
RayGpusOption = Annotated[float, typer.Option(help="--executor ray: GPUs per actor (with --device cuda).")]
RayWorkersOption = Annotated[
    int | None, typer.Option(help="--executor ray: actors (default: as many as the cluster holds).")
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
SaeLoadOption = Annotated[str | None, typer.Option(help="Score this SAE (folder or RELEASE/SAE_ID) on the real arm.")]


def sae_audit_options(
    arch: str,
    width: str,
    k: int,
    l1: float,
    lr: float,
    tokens: int,
    batch_size: int,
    splice_texts: int,
    load: str | None,
) -> object:
    """The ``sae`` method's options from the ``--sae-*`` flags (audit and sweep)."""
    from auditkit.audit.options import SAEAuditOptions, parse_width

    expansion, f = parse_width(width)
    return SAEAuditOptions(
        architecture=arch,
        expansion_factor=expansion,
        width=f,
        k=k,
        l1_coefficient=l1,
        lr=lr,
        training_tokens=tokens,
        batch_size=batch_size,
        splice_texts=splice_texts,
        load=load,
    )


def executor_options(executor: Executor, address: str | None, cpus: float, gpus: float, workers: int | None) -> object:
    from auditkit.sweep.executors import ExecutorOptions

    return ExecutorOptions(executor=executor.value, ray_address=address, num_cpus=cpus, num_gpus=gpus, workers=workers)


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


def seeds_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in csv_items(value))
    except ValueError:
        raise AuditkitError(f"--seeds {value!r} is not a comma-separated list of integers (e.g. 0,1,2)") from None
