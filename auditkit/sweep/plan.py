"""What a sweep covers: hooks (a list, a range, ``all``) and datasets (a list, a group, a glob over tags).

Everything here is resolved before any forward pass, so a typo in the fortieth dataset or the last hook
is one ``error:`` line, not a traceback after an hour.
"""

from __future__ import annotations

import re

from auditkit.data import kinds as dataset_kinds
from auditkit.errors import ConfigError

_RANGE_RE = re.compile(r"^blocks\.(\d+)-(\d+)(?::(\d+))?\.(.+)$")


def parse_hooks(spec: str, n_layers: int) -> list[str]:
    """Hook names of ``spec``, in depth order as written, without repeats.

    - a comma-separated list: ``blocks.3.hook_resid_pre,blocks.9.hook_resid_pre``;
    - a range, inclusive, with an optional step: ``blocks.0-29.hook_resid_pre``, ``blocks.0-29:2.hook_resid_pre``;
    - ``all``: every block's ``hook_resid_pre`` and the final residual (``blocks.{L-1}.hook_resid_post``);
    - ``middle``: the audit's default hook, ``blocks.{L//2}.hook_resid_pre``.
    Items may be mixed: ``blocks.0-10:5.hook_resid_pre,blocks.29.hook_resid_post``.
    """
    out: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item == "all":
            out += [f"blocks.{i}.hook_resid_pre" for i in range(n_layers)] + [f"blocks.{n_layers - 1}.hook_resid_post"]
        elif item == "middle":
            out.append(f"blocks.{n_layers // 2}.hook_resid_pre")
        elif m := _RANGE_RE.match(item):
            lo, hi, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
            if lo > hi or step < 1:
                raise ConfigError(
                    f"hook range {item!r} is empty: write blocks.LO-HI[:STEP].NAME with LO <= HI, STEP >= 1"
                )
            if hi >= n_layers:
                raise ConfigError(f"hook range {item!r}: the model has layers 0..{n_layers - 1}")
            out += [f"blocks.{i}.{m.group(4)}" for i in range(lo, hi + 1, step)]
        else:
            out.append(item)
    if not out:
        raise ConfigError(f"--hooks {spec!r} names no hook: e.g. all, middle, blocks.0-29.hook_resid_pre")
    return list(dict.fromkeys(out))


def layer_of(hook: str) -> float:
    """The depth of ``hook`` for plotting: block i's input is i, its output (``hook_resid_post``) i + 1,
    anything else inside block i is i + 0.5; hooks outside the blocks are NaN."""
    m = re.match(r"^blocks\.(\d+)\.(.+)$", hook)
    if not m:
        return float("nan")
    i, name = int(m.group(1)), m.group(2)
    return float(i) if name == "hook_resid_pre" else float(i + 1) if name == "hook_resid_post" else i + 0.5


def resolve_datasets(spec: str) -> list[str]:
    """Dataset specs of ``spec``, without repeats.

    - a comma-separated list of audit dataset specs (``sae-probes:TAG``, ``conllu:PATH``, ``table:PATH``);
    - ``sae-probes:binary`` / ``multiclass`` / ``classification`` / ``all``: every shipped dataset of that kind;
    - ``sae-probes:GLOB``: the tags matching a shell glob (``sae-probes:*_headline_*``).
    """
    out: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if item:
            out += dataset_kinds.expand(item)  # a group or glob of its kind (auditkit.data.kinds), else the item
    if not out:
        raise ConfigError(f"--datasets {spec!r} names no dataset: e.g. sae-probes:92_glue_sst2 or sae-probes:binary")
    return list(dict.fromkeys(out))
