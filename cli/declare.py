"""How a command's options are made from one declaration: a :class:`Flag` per user choice, naming the config field
it sets. From a list of flags this module builds the Typer command (its signature, help panels and defaults), the
config the parsed values describe, and the flags of the command line that rebuilds a config (the reproduce command).

A flag's type, default and help come from its config field (its annotation, its default, the first sentence of its
docstring) unless the flag says otherwise; its allowed values come from the library's tuple of them (``choices``).
The flags of ``audit``, ``sweep`` and ``steer`` are declared in :mod:`auditkit.cli.flags`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import re
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from auditkit.shell import Option, display_path

MISSING: Any = dataclasses.MISSING


class FromField:
    """The default of a :attr:`Flag.default` left to its config field."""

    def __repr__(self) -> str:
        return "FROM_FIELD"


FROM_FIELD: Any = FromField()


@dataclasses.dataclass(frozen=True)
class Context:
    """What a flag's :attr:`Flag.show` and :attr:`Flag.unparse` may read: the config that holds its field
    (``owner``), the command's whole config (``root``) and the audit (the root, or a sweep's per-cell audit)."""

    owner: Any
    root: Any
    audit: Any
    changed: bool
    """The field's value differs from its default."""


def always(ctx: Context) -> bool:
    return True


def never(ctx: Context) -> bool:
    return False


def when_changed(ctx: Context) -> bool:
    return ctx.changed


def identity(value: Any, flag: str) -> Any:
    return value


def same(value: Any, ctx: Context) -> Any:
    return value


@dataclasses.dataclass(frozen=True)
class Flag:
    """One option of a command: its one spelling, the config field it sets and how it reads and writes it.

    ``field`` is a dotted path into the command's config (``sae.k``, ``model.name``); None for an option that is
    not part of any config (``--out``, ``--verbose``), whose parsed value the command reads by :attr:`param`.
    """

    flag: str
    """The option's one spelling, e.g. ``--sae-k``."""
    field: str | None
    panel: str
    """The ``--help`` panel it is listed in."""
    help: str | None = None
    """Help text; None: the first sentence of the field's docstring."""
    type: Any = None
    """The type Typer parses; None: the field's annotation."""
    default: Any = FROM_FIELD
    """The command-line default; FROM_FIELD: the field's default, as :attr:`unparse` writes it."""
    choices: tuple[str, ...] | None = None
    """Allowed values (the library's tuple of them): Typer lists them and refuses any other."""
    parse: Callable[[Any, str], Any] = identity
    """Parsed command-line value (and the flag, for error messages) -> the field's value."""
    unparse: Callable[[Any, Context], Any] = same
    """The field's value -> the command-line value (for the reproduce command and the default)."""
    also: tuple[str, ...] = ()
    """Further fields set to the same value (``--no-cache`` turns off both caches)."""
    sets_siblings: bool = False
    """:attr:`parse` gives ``{field name: value}`` for several fields beside ``field`` (``--sae-width`` sets the
    expansion factor and the width)."""
    show: Callable[[Context], bool] = always
    """Whether the reproduce command writes it (``never`` for options that change no result)."""
    short: str | None = None
    """A one-letter alias (``-v``); a boolean with one has no ``--no-`` form."""

    @property
    def param(self) -> str:
        """The Python name of its parameter: ``--sae-k`` -> ``sae_k``."""
        return self.flag.removeprefix("--").replace("-", "_")

    def under(self, prefix: str) -> Flag:
        """The same flag setting the field under ``prefix`` (a sweep sets its per-cell audit's fields)."""
        field = None if self.field is None else f"{prefix}.{self.field}"
        return dataclasses.replace(self, field=field, also=tuple(f"{prefix}.{a}" for a in self.also))


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of the dataclass ``cls`` (Python keeps none of them at run time); none when
    its source is not installed (the help then says nothing, the option still works)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except OSError:
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def first_sentence(doc: str) -> str:
    """The docstring's first sentence on one line, without reST markup."""
    text = " ".join(doc.replace("``", "").split())
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return re.split(r"(?<=[.;])\s+(?=[A-Z(])", text, maxsplit=1)[0]


def resolve(root: type, path: str) -> tuple[type, dataclasses.Field]:
    """The dataclass that holds the field at ``path`` below ``root``, and the field."""
    cls = root
    parts = path.split(".")
    for name in parts[:-1]:
        cls = typing.get_type_hints(cls)[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return cls, fields[parts[-1]]


def field_default(field: dataclasses.Field) -> Any:
    if field.default is not MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def _cli_type(annotation: Any) -> Any:
    """The Typer type of a field annotation: a tuple is typed as comma-separated text."""
    if typing.get_origin(annotation) is tuple:
        return str
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) and any(typing.get_origin(a) is tuple for a in args):
        return str | None
    return annotation


@functools.cache
def _choice_enum(name: str, choices: tuple[str, ...]) -> type[Enum]:
    return Enum(name, {c.replace("-", "_"): c for c in choices}, type=str)  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A flag with its type, default and help filled in from its config field."""

    flag: Flag
    type: Any
    default: Any
    help: str

    def parameter(self) -> inspect.Parameter:
        f = self.flag
        decls = [f.flag] if self.type is not bool or f.short else [f"{f.flag}/--no-{f.flag[2:]}"]
        decls += [f.short] if f.short else []
        option = typer.Option(*decls, help=self.help, rich_help_panel=f.panel)
        return inspect.Parameter(
            f.param, inspect.Parameter.KEYWORD_ONLY, default=self.default, annotation=Annotated[self.type, option]
        )


def resolve_flag(flag: Flag, root: type | None, path: str | None) -> Resolved:
    """Fill in ``flag``'s type, default and help from its field at ``path`` below ``root``."""
    owner, field = resolve(root, path) if root is not None and path is not None else (None, None)
    kind = flag.type
    if kind is None:
        if field is None:
            raise ValueError(f"{flag.flag} sets no config field: give its type")
        kind = _cli_type(typing.get_type_hints(owner)[field.name])
    default = flag.default
    if default is FROM_FIELD:
        if field is None:
            raise ValueError(f"{flag.flag} sets no config field: give its default")
        # no config exists yet: a flag whose unparse reads one (ctx.owner, ctx.audit) declares its default
        default = flag.unparse(field_default(field), Context(None, None, None, changed=False))
        if isinstance(default, tuple):
            default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    help_text = flag.help
    if help_text is None:
        if field is None:
            raise ValueError(f"{flag.flag} sets no config field: give its help")
        help_text = first_sentence(field_docs(owner).get(field.name, ""))
    if flag.choices is not None:
        kind = _choice_enum(flag.param.title().replace("_", ""), flag.choices)
        default = kind(default)
    return Resolved(flag, kind, default, help_text)


@dataclasses.dataclass(frozen=True)
class Parsed:
    """A command's parsed options: config field values by dotted path, and the other options by name."""

    fields: dict[str, Any]
    plain: dict[str, Any]

    def build(self, cls: type, prefix: str = "") -> Any:
        """The ``cls`` config the fields under ``prefix`` describe (nested configs built first, each validated by
        its own ``__post_init__``); fields no flag set keep their defaults."""
        start = f"{prefix}." if prefix else ""
        values = {k[len(start) :]: v for k, v in self.fields.items() if k.startswith(start)}
        return _build(cls, values)


def _build(cls: type, values: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        name, _, rest = path.partition(".")
        if name not in hints:
            continue  # another config's field (a command builds several)
        if rest:
            nested.setdefault(name, {})[rest] = value
        else:
            kwargs[name] = value
    for name, inner in nested.items():
        kwargs[name] = _build(hints[name], inner)
    return cls(**kwargs)


def parse(flags: Iterable[Flag], kwargs: Mapping[str, Any]) -> Parsed:
    """The parsed options of a call of a generated command (``kwargs``: Typer's values by parameter name)."""
    fields: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for f in flags:
        raw = kwargs[f.param]
        raw = raw.value if isinstance(raw, Enum) else raw
        if f.field is None:
            plain[f.param] = raw
            continue
        value = f.parse(raw, f.flag)
        if f.sets_siblings:
            parent = f.field.rpartition(".")[0]
            fields |= {f"{parent}.{k}" if parent else k: v for k, v in value.items()}
        else:
            fields |= {path: value for path in (f.field, *f.also)}
    return Parsed(fields, plain)


def typer_command(
    name: str, doc: str, flags: list[Flag], roots: Mapping[str, type], run: Callable[[Parsed], None]
) -> Callable[..., None]:
    """A Typer command ``name`` whose options are ``flags`` (types, defaults and help from their fields; each
    field path starts with a key of ``roots`` naming its config class, or is one of the root ``""``'s fields).
    Calling it parses the values and hands them to ``run``."""
    from auditkit.cli.app import one_line_errors

    resolved = [resolve_flag(f, *_root_of(f, roots)) for f in flags]

    @one_line_errors
    def command(**kwargs: Any) -> None:
        run(parse(flags, kwargs))  # a value no config accepts fails here, as one line

    params = [r.parameter() for r in resolved]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = command.__qualname__ = name
    command.__doc__ = doc
    return command


def _root_of(flag: Flag, roots: Mapping[str, type]) -> tuple[type | None, str | None]:
    """The config class ``flag``'s field belongs to, and the field's path inside it."""
    if flag.field is None:
        return None, None
    head, _, rest = flag.field.partition(".")
    return (roots[head], rest) if head in roots and head else (roots[""], flag.field)


def reproduce_options(
    flags: Iterable[Flag], root: Any, audit: Any, plain: Mapping[str, Any] | None = None
) -> list[Option]:
    """``(flag, value)`` pairs that rebuild ``root`` (the command's config; ``audit``: its audit), in declaration
    order; a flag with no field is written from ``plain`` (by parameter name) when given there."""
    out: list[Option] = []
    for f in flags:
        if f.show is never:
            continue
        if f.field is None:
            if plain is not None and f.param in plain:
                out.append((f.flag, plain[f.param]))
            continue
        owner = root
        *parents, name = f.field.split(".")
        for p in parents:
            owner = getattr(owner, p)
        value = getattr(owner, name)
        default = field_default({x.name: x for x in dataclasses.fields(owner)}[name])
        ctx = Context(owner, root, audit, changed=value != default)
        if f.show(ctx):
            out.append((f.flag, f.unparse(value, ctx)))
    return out


def path_value(value: Any) -> Any:
    """A path option's value as written into a command (relative to the working folder inside it)."""
    return display_path(value) if isinstance(value, (str, Path)) and value else value
