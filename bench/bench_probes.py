"""Probe fitting: auditkit's stacked probe against a loop of scikit-learn fits, on one audit's problems.

The problems are those of a full audit: 5 arms (real labels, Hewitt and Liang's control task, three
shuffled-label draws) x 3 seeds (each its own split by example) = 15 problems sharing one feature
matrix, for a binary task and a 17-class task. The features are real activations of the embedded
model (SmolLM2-135M, ``blocks.{layer}.hook_resid_pre``, D = 576) at the labelled word positions of UD
English-EWT dev (UPOS, 17 classes; binary: noun or proper noun vs the rest), cached under
``~/.cache/auditkit`` after the first run. The baseline is what a user would write: for each problem,
``StandardScaler`` on its training rows, then ``LogisticRegression(C=C)`` (lbfgs, scikit-learn's
default tol, max_iter raised to 1000 so every fit converges). Both sides are timed in this run (the
machine is shared and noisy, so only the ratio is meaningful); held-out accuracy is compared per
problem.

    python bench/bench_probes.py [--layer 3] [--sentences 2002] [--C 1.0] [--sklearn-problems 15]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

CONLLU = str(
    Path(__file__).resolve().parents[2] / "shared/data/ud-english-ewt/en_ewt-ud-dev.conllu"
)  # benches and tests only


def _activations(layer: int, n_sentences: int):
    from auditkit import data
    from auditkit.audit.probe import labelled_rows
    from auditkit.cache import CacheEntry
    from auditkit.extract import ExtractConfig, cache_request, extract
    from auditkit.models import ModelSpec, default_cache_dir, load_model

    loaded = load_model(ModelSpec())
    ds = data.load_conllu(CONLLU, max_sentences=n_sentences)
    tok = loaded.model.tokenizer
    batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=128)
    cfg = ExtractConfig(hook=f"blocks.{layer}.hook_resid_pre", positions="labelled", progress=False)
    cache = CacheEntry(default_cache_dir(), cache_request(loaded.provenance, batch, cfg))
    return labelled_rows(extract(loaded.model, batch, cfg, provenance=loaded.provenance.to_dict(), cache=cache))


def _problems(acts, labels_N: np.ndarray):
    """y_SN, train_SN and names for 5 arms x 3 seeds built on ``labels_N``."""
    from auditkit.controls.labels import control_task, shuffled_labels
    from auditkit.seeding import derive_seed
    from auditkit.splits import split_examples

    ys, trains, names = [], [], []
    base = acts.replace(labels_N=labels_N)
    for seed in (0, 1, 2):
        is_test = split_examples(acts.example_ids_N, labels_N, seed=derive_seed(seed, "split"), test_fraction=0.25)
        real = base.replace(is_test_N=is_test)
        arms = [("real", real), ("control-task", control_task(real, derive_seed(seed, "control-task")))]
        arms += [(f"shuffled-{j}", shuffled_labels(real, derive_seed(seed, "shuffled", j))) for j in range(3)]
        for name, arm in arms:
            ys.append(arm.labels_N)
            trains.append(~arm.is_test_N)
            names.append(f"{name}/seed{seed}")
    return torch.as_tensor(np.stack(ys)), torch.as_tensor(np.stack(trains)), names


def _sklearn(X: np.ndarray, y_SN: np.ndarray, train_SN: np.ndarray, C: float, n: int) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    accs = []
    start = time.perf_counter()
    for s in range(n):
        tr = train_SN[s]
        scaler = StandardScaler().fit(X[tr])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a ConvergenceWarning would make the comparison unfair
            model = LogisticRegression(C=C, max_iter=1000).fit(scaler.transform(X[tr]), y_SN[s][tr])
        accs.append(float((model.predict(scaler.transform(X[~tr])) == y_SN[s][~tr]).mean()))
    return np.asarray(accs), time.perf_counter() - start


def _auditkit(X: torch.Tensor, y_SN: torch.Tensor, train_SN: torch.Tensor, C: float, K: int):
    from auditkit.methods.probes.logistic import LogisticProbe

    start = time.perf_counter()
    probe = LogisticProbe(C=C).fit(X, y_SN, train_SN, K)
    seconds = time.perf_counter() - start
    pred_SN = probe.predict(X)
    accs = np.asarray(
        [float((pred_SN[s][~train_SN[s]] == y_SN[s][~train_SN[s]]).double().mean()) for s in range(len(y_SN))]
    )
    return accs, seconds, probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=2002, help="UD EWT dev sentences (2002: all)")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--sklearn-problems", type=int, default=15, help="fit only the first n with sklearn")
    args = parser.parse_args()
    t = time.perf_counter()
    acts = _activations(args.layer, args.sentences)
    X = acts.acts_ND.float()
    print(
        f"{acts.n} rows x {acts.d} dims at {acts.hook} ({time.perf_counter() - t:.0f} s to load/extract); "
        f"torch threads {torch.get_num_threads()}"
    )
    upos = acts.labels_N
    nounish = np.isin(np.asarray(acts.class_names)[upos], ["NOUN", "PROPN"]).astype(np.int64)
    for task, labels, K in (("binary NOUN|PROPN", nounish, 2), ("UPOS", upos, len(acts.class_names))):
        y_SN, train_SN, names = _problems(acts, labels)
        n = min(args.sklearn_problems, len(names))
        ours, ours_s, probe = _auditkit(X, y_SN, train_SN, args.C, K)
        ref, ref_s = _sklearn(X.numpy(), y_SN.numpy(), train_SN.numpy(), args.C, n)
        ref_s_all = ref_s * len(names) / n
        diff = np.abs(ours[:n] - ref) * 100
        print(f"\n{task}: {len(names)} problems, K={K}, C={args.C}")
        print(
            f"  auditkit stacked: {ours_s:7.2f} s  ({int(probe.n_iter_S_.max())} L-BFGS iterations, "
            f"{int(probe.converged_S_.sum())}/{len(names)} problems converged, worst grad {probe.grad_max_S_.max():.1e}, "
            f"{probe.coef_SDK_.dtype})"
        )
        extrapolated = "" if n == len(names) else f" (measured {ref_s:.1f} s on {n}, scaled)"
        print(f"  sklearn loop:     {ref_s_all:7.2f} s{extrapolated}")
        print(f"  speed ratio: {ref_s_all / ours_s:.1f}x (target >= 10x)")
        print(
            f"  held-out accuracy |auditkit - sklearn|: max {diff.max():.2f} points, mean {diff.mean():.2f} "
            f"(target <= 0.5)"
        )
        for name, a, b in zip(names[:n], ours, ref):
            if name.startswith(("real", "control")):
                print(f"    {name:24s} auditkit {a:.4f}  sklearn {b:.4f}")


if __name__ == "__main__":
    main()
