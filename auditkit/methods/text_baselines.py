"""What the words alone give: two probes that read only the text, never a model.

- ``bag-of-words``: TF-IDF over unigrams and bigrams (scikit-learn's ``TfidfVectorizer``, its default word
  tokenizer) into an L2-regularised logistic regression at the audit's probe C. A label this reads well is
  decided by which words occur (a phrase-presence task), whatever a model's activations hold.
- ``length``: two features, the text's characters and its whitespace-separated tokens, standardised on the
  training rows, into the same logistic regression. A label this reads is a length cue.

Each fits on training rows and returns one bool per test row (right or wrong), so that the caller can pool
or interval them like any held-out outcome. scikit-learn is imported inside the fits: the core install has it,
but nothing that never asks for a baseline pays for importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BASELINES: tuple[str, ...] = ("bag-of-words", "length")
"""The baselines, in report order."""


def length_features(texts: Sequence[str]) -> np.ndarray:
    """float [N, 2]: characters and whitespace-separated tokens of every text."""
    return np.array([[len(t), len(t.split())] for t in texts], dtype=np.float64).reshape(-1, 2)


def _logistic(C: float, seed: int):  # noqa: ANN202 (a scikit-learn estimator)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=1000, random_state=seed)


def _single_class(y_train: np.ndarray, n_test: int) -> np.ndarray | None:
    """Predictions when the training rows hold one class (no fit possible): that class, everywhere."""
    classes = np.unique(y_train)
    return np.full(n_test, classes[0]) if len(classes) == 1 else None


def bag_of_words_predict(
    train_texts: Sequence[str], y_train: np.ndarray, test_texts: Sequence[str], *, C: float, seed: int = 0
) -> np.ndarray:
    """int [N_test] predicted class of every test text from its unigrams and bigrams (TF-IDF, logistic)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    fixed = _single_class(y_train, len(test_texts))
    if fixed is not None:
        return fixed
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    try:
        X_train = vectorizer.fit_transform(train_texts)
    except ValueError:  # no word in any training text (empty vocabulary): the words say nothing
        return np.full(len(test_texts), np.bincount(y_train).argmax())
    return _logistic(C, seed).fit(X_train, y_train).predict(vectorizer.transform(test_texts))


def length_predict(
    train_texts: Sequence[str], y_train: np.ndarray, test_texts: Sequence[str], *, C: float, seed: int = 0
) -> np.ndarray:
    """int [N_test] predicted class of every test text from its length in characters and tokens."""
    fixed = _single_class(y_train, len(test_texts))
    if fixed is not None:
        return fixed
    X_train, X_test = length_features(train_texts), length_features(test_texts)
    mean, sd = X_train.mean(0), X_train.std(0)
    sd[sd == 0] = 1.0
    return _logistic(C, seed).fit((X_train - mean) / sd, y_train).predict((X_test - mean) / sd)


PREDICTORS: dict[str, Callable[..., np.ndarray]] = {"bag-of-words": bag_of_words_predict, "length": length_predict}
"""Each baseline's fit-and-predict function, by name."""


def baseline_correct(
    name: str,
    texts: Sequence[str],
    labels: np.ndarray,
    is_test: np.ndarray,
    *,
    C: float,
    seed: int = 0,
) -> np.ndarray:
    """bool [N_test]: whether baseline ``name`` fitted on the rows with ``is_test`` False labels each test row
    right. ``texts[i]`` and ``labels[i]`` are row i (a text with several labels appears once per label)."""
    texts = list(texts)
    train = [t for t, test in zip(texts, is_test) if not test]
    test = [t for t, test in zip(texts, is_test) if test]
    predicted = PREDICTORS[name](train, labels[~is_test], test, C=C, seed=seed)
    return np.asarray(predicted) == labels[is_test]
