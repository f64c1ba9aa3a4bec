"""Load labelled text into a :class:`~auditkit.types.LabelledDataset` and tokenise it into a
:class:`~auditkit.types.TokenBatch`.

- :mod:`~auditkit.data.sae_probes`: the sae-probes benchmark datasets (read from the installed package's
  files, never by importing it);
- :mod:`~auditkit.data.conllu`: CoNLL-U treebanks (token-level part-of-speech tags);
- :mod:`~auditkit.data.tables`: local tables, ``datasets`` sources and in-memory lists;
- :mod:`~auditkit.data.labelled`: what every loader ends in (label encoding, :func:`validate_labelled`, the
  content :func:`fingerprint` used in cache keys);
- :mod:`~auditkit.data.tokenizing`: :func:`tokenize` and the example-level splits.
"""

from __future__ import annotations

from auditkit.data.conllu import load_conllu
from auditkit.data.labelled import fingerprint, labelled_dataset, validate_labelled
from auditkit.data.sae_probes import list_sae_probes, load_sae_probes
from auditkit.data.tables import from_lists, load_table
from auditkit.data.tokenizing import split_items, tokenize

__all__ = [
    "fingerprint",
    "from_lists",
    "labelled_dataset",
    "list_sae_probes",
    "load_conllu",
    "load_sae_probes",
    "load_table",
    "split_items",
    "tokenize",
    "validate_labelled",
]
