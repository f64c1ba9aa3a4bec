"""What the words alone give: three probes that read only the text or its tokens, never a model.

- ``bag-of-words``: TF-IDF over unigrams and bigrams (scikit-learn's ``TfidfVectorizer``, its default word
  tokenizer) into an L2-regularised logistic regression at :data:`LEXICAL_C`. A label this reads well is
  decided by which words occur (a phrase-presence task), whatever a model's activations hold.
- ``length``: two features, the text's characters and its whitespace-separated tokens, standardised on the
  training rows, into the same logistic regression. A label this reads is a length cue.
- ``last-token``: the identity of one token (one-hot token id) into the same logistic regression: what the
  token an audit reads its activations at gives alone. It reads token ids, not texts (the audit's lexical arms,
  :mod:`auditkit.audit.lexical`; the trust table runs the two text baselines).

Each fits on training rows and gives class probabilities per test row (``*_proba``: the audit's lexical arms
score them like a probe's), its most probable class (``*_predict``), or one bool per test row (right or wrong,
:func:`baseline_correct`), so that the caller can pool or interval them like any held-out outcome.
scikit-learn is imported inside the fits: the core install has it, but nothing that never asks for a baseline
pays for importing it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

BASELINES: tuple[str, ...] = ("bag-of-words", "length")
"""The text baselines of the trust table, in report order."""


def length_features(texts: Sequence[str]) -> np.ndarray:
    """float [N, 2]: characters and whitespace-separated tokens of every text."""
    return np.array([[len(t), len(t.split())] for t in texts], dtype=np.float64).reshape(-1, 2)


def _logistic(C: float, seed: int):  # returns a scikit-learn estimator (not annotated)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=1000, random_state=seed)


LEXICAL_C = 1.0
"""The C of every text baseline's logistic regression (scikit-learn's default), whatever C the probes use: a C
meant for standardised activations shrinks a TF-IDF model to its prior (``--probe-c 0.003`` took the bag-of-words
baseline on SST-2, 1,000 texts, from 0.671 to 0.466 held-out accuracy, and on ``100_news_fake`` from 0.997 to
0.502), which would make the lexical control a weak one and a probe falsely "selective over lexical"."""

LEXICAL_C_GRID: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
"""The Cs a text baseline chooses among when the probes choose theirs (``--probe-c-grid``), so that a tuned probe
meets a tuned baseline: its own range, since sparse TF-IDF and one-hot features want weaker penalties than
standardised activations (bag-of-words held-out accuracy at C = 1 / 10 / 100, 1,000 texts, 3 splits: SST-2 0.671 /
0.683 / 0.696, ``5_hist_fig_ismale`` 0.838 / 0.867 / 0.871, ``87_glue_cola`` 0.713 / 0.732 / 0.722)."""

CV_FOLDS = 3
"""Folds of the training texts that choose C under ``--probe-c-grid``."""


def fold_of_rows(groups_N: np.ndarray, seed: int, folds: int = CV_FOLDS) -> np.ndarray:
    """int [N]: the fold of every row, its text (``groups_N``) dealt at random (seeded) to one of ``folds`` folds
    of near-equal numbers of texts; all rows of a text share a fold."""
    texts, inverse = np.unique(np.asarray(groups_N), return_inverse=True)
    fold_T = np.empty(len(texts), dtype=np.int64)
    fold_T[np.random.default_rng(seed).permutation(len(texts))] = np.arange(len(texts)) % folds
    return fold_T[inverse]


def cv_folds(groups_N: np.ndarray, y_N: np.ndarray, seed: int, folds: int = CV_FOLDS) -> np.ndarray | None:
    """:func:`fold_of_rows` of training rows, or None where no C can be chosen: fewer texts than folds, or a fold
    whose training part (the other folds) misses one of the classes of ``y_N``."""
    if len(np.unique(groups_N)) < folds:
        return None
    fold_N = fold_of_rows(groups_N, seed, folds)
    n_classes = np.unique(y_N).size
    if any(np.unique(y_N[fold_N != k]).size < n_classes for k in range(folds)):
        return None
    return fold_N


def _single_class(y_train: np.ndarray, n_test: int, n_classes: int) -> np.ndarray | None:
    """Probabilities when the training rows hold one class (no fit possible): that class, everywhere."""
    classes = np.unique(y_train)
    return _one_hot(np.full(n_test, classes[0]), n_classes) if len(classes) == 1 else None


def _one_hot(classes_N: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes)[classes_N]


def _fit_proba(
    X_train,
    y_train: np.ndarray,
    X_test,
    n_classes: int,
    C: float,
    seed: int,
    C_grid: Sequence[float] = (),
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """float [N_test, K]: the logistic regression's class probabilities, a column for every class (a class absent
    from the training rows gets probability 0). With ``C_grid`` the C is chosen among its values by the held-out
    log-loss of :data:`CV_FOLDS` folds of the training rows, rows of one text (``groups``) in one fold, as every
    probe's is under ``--probe-c-grid`` (:func:`auditkit.audit.probe.choose_C`); ``C`` where a fold's training
    rows miss a class or there are fewer texts than folds."""
    model = _logistic(C, seed)
    fold_N = cv_folds(groups if groups is not None else np.arange(len(y_train)), y_train, seed) if C_grid else None
    if fold_N is not None:
        from sklearn.linear_model import LogisticRegressionCV

        splits = [(np.flatnonzero(fold_N != k), np.flatnonzero(fold_N == k)) for k in range(CV_FOLDS)]
        model = LogisticRegressionCV(
            Cs=sorted(C_grid), cv=splits, scoring="neg_log_loss", max_iter=1000, random_state=seed
        )
    with warnings.catch_warnings():
        # scikit-learn 1.9's LogisticRegressionCV warns on every fit of defaults and attributes that change in 1.10
        # (l1_ratios, its fitted attributes); a grid audit printed two per baseline per seed. Only predict_proba and
        # classes_ are read here, the same either way.
        warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
        fitted = model.fit(X_train, y_train)
    out = np.zeros((X_test.shape[0], n_classes))
    out[:, fitted.classes_] = fitted.predict_proba(X_test)
    return out


def bag_of_words_proba(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    test_texts: Sequence[str],
    *,
    n_classes: int,
    C: float,
    seed: int = 0,
    C_grid: Sequence[float] = (),
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """float [N_test, K] class probabilities of every test text from its unigrams and bigrams (TF-IDF, logistic)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    fixed = _single_class(y_train, len(test_texts), n_classes)
    if fixed is not None:
        return fixed
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    try:
        X_train = vectorizer.fit_transform(train_texts)
    except ValueError:  # no word in any training text (empty vocabulary): the words say nothing
        return _one_hot(np.full(len(test_texts), np.bincount(y_train).argmax()), n_classes)
    return _fit_proba(X_train, y_train, vectorizer.transform(test_texts), n_classes, C, seed, C_grid, groups)


def length_proba(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    test_texts: Sequence[str],
    *,
    n_classes: int,
    C: float,
    seed: int = 0,
    C_grid: Sequence[float] = (),
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """float [N_test, K] class probabilities of every test text from its length in characters and tokens."""
    fixed = _single_class(y_train, len(test_texts), n_classes)
    if fixed is not None:
        return fixed
    X_train, X_test = length_features(train_texts), length_features(test_texts)
    mean, sd = X_train.mean(0), X_train.std(0)
    sd[sd == 0] = 1.0
    return _fit_proba((X_train - mean) / sd, y_train, (X_test - mean) / sd, n_classes, C, seed, C_grid, groups)


def token_identity_proba(
    train_ids: Sequence[int],
    y_train: np.ndarray,
    test_ids: Sequence[int],
    *,
    n_classes: int,
    C: float,
    seed: int = 0,
    C_grid: Sequence[float] = (),
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """float [N_test, K] class probabilities of every row from the identity of one token (a one-hot token id, a
    token never seen in training all zeros), into the same logistic regression: what the token at the read
    position alone gives (a type's majority label, smoothed by C)."""
    from sklearn.preprocessing import OneHotEncoder

    fixed = _single_class(y_train, len(test_ids), n_classes)
    if fixed is not None:
        return fixed
    encoder = OneHotEncoder(handle_unknown="ignore")
    X_train = encoder.fit_transform(np.asarray(train_ids, dtype=np.int64).reshape(-1, 1))
    X_test = encoder.transform(np.asarray(test_ids, dtype=np.int64).reshape(-1, 1))
    return _fit_proba(X_train, y_train, X_test, n_classes, C, seed, C_grid, groups)


PROBA: dict[str, Callable[..., np.ndarray]] = {
    "bag-of-words": bag_of_words_proba,
    "length": length_proba,
    "last-token": token_identity_proba,
}
"""Each baseline's fit-and-predict-probabilities function, by name: ``bag-of-words`` and ``length`` read texts,
``last-token`` reads token ids."""


def _predictor(proba: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def predict(train: Sequence, y_train: np.ndarray, test: Sequence, *, C: float, seed: int = 0) -> np.ndarray:
        """int [N_test] predicted class (the most probable) of every test row."""
        n_classes = int(max(np.max(y_train, initial=0), 0)) + 1
        return proba(train, y_train, test, n_classes=n_classes, C=C, seed=seed).argmax(1)

    return predict


bag_of_words_predict = _predictor(bag_of_words_proba)
length_predict = _predictor(length_proba)


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
