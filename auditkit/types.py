"""The typed objects that flow between auditkit's stages, and the shape glossary.

Shape suffixes on local names and fields (one glossary for the whole package):

    B  batch (texts in a forward pass)      L  token position in a padded row
    N  rows of an ActivationSet (tokens)    D  d_model (or any activation width)
    M  labelled items of a dataset          F  dictionary size (SAE latents, atoms)
    K  classes                              V  vocabulary size

So ``acts_ND`` is an [N, D] tensor, ``tokens_BL`` a [B, L] tensor and ``W_dec_FD`` an [F, D] decoder.

The pipeline, one object out of each stage::

    LabelledDataset --tokenize--> TokenBatch --extract(model, hook)--> ActivationSet --method.fit--> ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

Level = Literal["sentence", "token"]

REAL = "none"
"""The arm name of the real (unperturbed) arm: the ``control`` value of its result rows, next to each
control's own name."""
"""``sentence``: one label per text. ``token``: labels belong to words inside a text."""


@dataclass(frozen=True, kw_only=True)
class ModelProvenance:
    """Where a model's weights came from, recorded in every report."""

    name: str
    """The spec the user gave (``smollm2-135m``, ``gpt2``, a folder path, ``tiny-gpt2``)."""
    source: Literal["embedded-gguf", "hub", "local-folder", "random-init"]
    """How the weights were obtained."""
    architecture: str
    """The Hugging Face architecture class or TransformerLens ``original_architecture``."""
    revision: str | None = None
    """Hub revision or Pythia checkpoint (``step0``), if any."""
    weights_variant: str = "trained"
    """``trained``, a quantisation note (``gguf-Q4_1-dequantised``), or a control (``spectral-reinit``)."""
    processed: bool = False
    """Whether TransformerLens weight processing (LayerNorm folding, centring) was applied."""
    n_layers: int = 0
    """Number of transformer blocks."""
    d_model: int = 0
    """Residual stream width."""
    d_vocab: int = 0
    """Vocabulary size."""
    prepend_bos: bool = True
    """Whether a BOS token is prepended to every text."""
    file_sha256: str | None = None
    """Content hash of the weights: the GGUF file an embedded model was converted from, or a local
    folder's config, weight and tokenizer files (:func:`auditkit.models.folder_sha256`)."""
    seed: int | None = None
    """Seed of a random initialisation or weight control."""
    dtype: str = "float32"
    """Parameter dtype the forward passes ran in (activations are stored and fitted in float32)."""
    device: str = "cpu"
    """Torch device the model ran on (``auto`` resolved), where the audit's fits run too: recorded, never part of a
    cache key."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def cache_token(self) -> str:
        """The part of a cache key that identifies these exact weights.

        A local folder is named by its contents (``file_sha256``), never its path: a moved folder is
        still a hit, overwritten weights are not. The parameter dtype is part of it (a bfloat16 pass is
        never served to a float32 request), appended only when it is not float32 so that the keys of
        float32 entries written before dtypes were recorded stay valid; the device is not (the same
        weights in the same dtype are one request wherever they ran).
        """
        token = "|".join(
            str(x)
            for x in (
                "local-folder" if self.source == "local-folder" else self.name,
                self.source,
                self.revision,
                self.weights_variant,
                self.processed,
                self.prepend_bos,
                self.file_sha256,
                self.seed,
            )
        )
        return token if self.dtype == "float32" else f"{token}|{self.dtype}"


@dataclass(frozen=True, kw_only=True)
class LabelledDataset:
    """Texts plus labels plus where in each text every label belongs.

    A sentence-level dataset has one labelled item per text (``item_span_M2`` is None). A token-level
    dataset has one item per labelled word, located by its character span in the text.
    """

    name: str
    """Identifier shown in reports (``sae-probes:92_glue_sst2``, ``conllu:en_ewt-ud-dev``)."""
    texts: tuple[str, ...]
    """The raw texts, one per example."""
    labels_M: np.ndarray
    """int64 [M] class index of every labelled item."""
    item_example_M: np.ndarray
    """int64 [M] index into ``texts`` of every item."""
    class_names: tuple[str, ...]
    """Name of every class, indexed by label."""
    level: Level = "sentence"
    """Sentence- or token-level."""
    item_span_M2: np.ndarray | None = None
    """int64 [M, 2] character span [start, end) of the labelled word (token-level only)."""
    groups_M: tuple[str, ...] | None = None
    """Grouping key of every item (the word type for token-level data), used by control tasks."""
    source: str = ""
    """Where the data was read from (package file, path, hub id)."""
    fingerprint: str = ""
    """Content hash of texts, labels and spans, used in cache keys."""
    duplicates: dict[str, Any] = field(default_factory=dict)
    """Repeated texts in the source and what the duplicates policy did
    (:class:`auditkit.duplicates.DuplicateReport` as a dict)."""
    label_notes: tuple[str, ...] = ()
    """Warnings about the labels for the report (e.g. classes that differ only by case)."""

    @property
    def n_items(self) -> int:
        return int(self.labels_M.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True, kw_only=True)
class TokenBatch:
    """Tokenised texts, padded on the right, with the token position every labelled item belongs to."""

    tokens_BL: torch.Tensor
    """int64 [B, L] token ids, right-padded with ``pad_token_id``."""
    mask_BL: torch.Tensor
    """bool [B, L], True on real tokens (BOS included), False on padding."""
    labels_M: np.ndarray
    """int64 [M] label of every item."""
    item_example_M: np.ndarray
    """int64 [M] row of every item."""
    item_position_M: np.ndarray
    """int64 [M] aligned token position of a token-level item; -1 for sentence-level items."""
    is_test_M: np.ndarray
    """bool [M] test-split membership (split by example, never inside one)."""
    class_names: tuple[str, ...]
    """Name of every class."""
    level: Level
    """Sentence- or token-level."""
    pad_token_id: int
    """Id used for padding."""
    has_bos: bool
    """Whether position 0 of every row is a BOS token."""
    special_token_ids: tuple[int, ...] = ()
    """Ids of the tokenizer's special tokens (kept fixed by token controls)."""
    groups_M: tuple[str, ...] | None = None
    """Grouping key of every item (see ``LabelledDataset.groups_M``)."""
    dataset_fingerprint: str = ""
    """Fingerprint of the dataset (and of any token control) for cache keys."""
    dataset_name: str = ""
    """Name of the source dataset."""
    variant: str = "real"
    """``real`` or the name of the token control that produced this batch."""
    merged_examples: int = 0
    """Distinct texts merged into another example because their token ids are identical."""
    n_truncated: int = 0
    """Texts longer than the token budget (``max_length``), whose tail was cut off."""

    @property
    def n_examples(self) -> int:
        return int(self.tokens_BL.shape[0])

    @property
    def lengths_B(self) -> torch.Tensor:
        return self.mask_BL.sum(dim=1)

    @property
    def n_tokens(self) -> int:
        return int(self.mask_BL.sum())


@dataclass(frozen=True, kw_only=True)
class ActivationSet:
    """Activations at one hook, one row per selected position, with everything needed to audit them."""

    acts_ND: torch.Tensor
    """float [N, D] activations."""
    labels_N: np.ndarray
    """int64 [N] label of every row; -1 where a row carries no label."""
    token_ids_N: np.ndarray
    """int64 [N] token id at the row's position (-1 for mean-pooled rows)."""
    example_ids_N: np.ndarray
    """int64 [N] example (text) index of every row."""
    positions_N: np.ndarray
    """int64 [N] token position of every row (-1 for mean-pooled rows)."""
    is_test_N: np.ndarray
    """bool [N] test-split membership."""
    hook: str
    """TransformerLens hook name the activations were read at."""
    positions: str
    """Position rule: ``all``, ``last``, ``mean`` or ``labelled``."""
    class_names: tuple[str, ...] = ()
    """Name of every class."""
    groups_N: tuple[str, ...] | None = None
    """Grouping key of every row (see ``LabelledDataset.groups_M``)."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Model provenance, dataset fingerprint, control names: whatever produced these rows."""

    @property
    def n(self) -> int:
        return int(self.acts_ND.shape[0])

    @property
    def d(self) -> int:
        return int(self.acts_ND.shape[1])

    def replace(self, **changes: Any) -> ActivationSet:
        """A copy with ``changes`` applied (controls use this to swap labels)."""
        return dataclasses.replace(self, **changes)
