"""`mixed_model`: a Bayesian Gaussian mixture draws X, a fitted classifier labels it.

The paper's "Mixed-Model" baseline as the public reimplementation defines it:

1. the features are embedded - numeric and integer columns standardised,
   categorical columns one-hot - and a `BayesianGaussianMixture` with random
   hyperparameters (components, covariance type, weight prior; drawn from the fit
   seed) learns that space;
2. a classifier drawn at random from random forest, decision tree, MLP, SVC
   (Platt-calibrated probabilities) and histogram gradient boosting is fitted on
   the real rows, in the same space;
3. a drawn point is decoded (numeric un-scaled and clipped to the observed range,
   integers also rounded, each categorical block's largest coordinate is its
   category) and labelled by a draw from the classifier's class probabilities
   (not its argmax, so a minority class keeps its share instead of vanishing).

Class requests are met by rejection: rounds of `oversample` x n points are drawn
and labelled, rows of the asked classes kept, for at most `max_rounds` rounds; a
class not reached raises a `ValueError` naming it and the fix. `sample(n)` returns
the classifier's own labels. Sampling a mixture is cheap, but labelling is a
classifier call, so a pool is drawn once (`streaming` False).
"""

from __future__ import annotations

import warnings

import numpy as np

from finetune.augmenters._base import Generator

CLASSIFIERS = ("random_forest", "decision_tree", "mlp", "svc", "hgb")
_COVARIANCES = ("full", "tied", "diag", "spherical")


def _classifier(kind: str, seed: int, folds: int):  # noqa: ANN202
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "random_forest": lambda: RandomForestClassifier(100, random_state=seed),
        "decision_tree": lambda: DecisionTreeClassifier(
            min_samples_leaf=3, random_state=seed
        ),
        "mlp": lambda: MLPClassifier((64, 64), max_iter=500, random_state=seed),
        # sklearn 1.9 deprecates SVC(probability=True) for this (Platt scaling)
        "svc": lambda: CalibratedClassifierCV(
            SVC(random_state=seed), cv=folds, ensemble=False
        ),
        "hgb": lambda: HistGradientBoostingClassifier(max_iter=100, random_state=seed),
    }[kind]()


class MixedModel(Generator):
    """Bayesian-Gaussian-mixture features, labels from a random classifier.

    Args:
      classifier: one of `CLASSIFIERS`, or None to draw one from the fit seed.
      max_components: the most mixture components a fit may draw.
      max_iter: EM iterations of the mixture (its time bound).
      oversample: points per round of rejection, as a multiple of the rows asked.
      max_rounds: rounds of rejection before a class request fails.

    Examples:
      >>> import numpy as np, pandas as pd
      >>> rng = np.random.default_rng(0)
      >>> X = pd.DataFrame({"a": rng.normal(size=60), "c": rng.choice(["u", "v"], 60)})
      >>> gen = MixedModel(classifier="decision_tree").fit(X, X["a"] > 0)
      >>> Xs, ys = gen.sample(10, y="True")
      >>> sorted(set(ys)), list(Xs["c"].cat.categories)
      (['True'], ['u', 'v'])
    """

    name = "mixed_model"
    conditional = "rejection"
    streaming = False

    def __init__(
        self,
        *,
        classifier: str | None = None,
        max_components: int = 10,
        max_iter: int = 200,
        oversample: float = 2.0,
        max_rounds: int = 20,
    ) -> None:
        if classifier is not None and classifier not in CLASSIFIERS:
            raise ValueError(
                f"classifier must be one of {CLASSIFIERS} or None, got {classifier!r}"
            )
        for name, v in (
            ("max_components", max_components),
            ("max_iter", max_iter),
            ("max_rounds", max_rounds),
        ):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(oversample, (int, float)) and oversample >= 1):
            raise ValueError(f"oversample must be a number >= 1, got {oversample!r}")
        self.classifier, self.max_components = classifier, max_components
        self.max_iter, self.oversample, self.max_rounds = (
            max_iter,
            float(oversample),
            max_rounds,
        )

    def _embed(self, x: np.ndarray) -> np.ndarray:
        parts = []
        for j, kind in enumerate(self._kinds()):
            if kind == "categorical":
                k = len(self.columns_[j].categories)
                parts.append(np.eye(k)[x[:, j].astype(np.int64)])
            else:
                parts.append(((x[:, j] - self._mean[j]) / self._scale[j])[:, None])
        return np.hstack(parts)

    def _decode(self, e: np.ndarray) -> np.ndarray:
        out, at = [], 0
        for j, kind in enumerate(self._kinds()):
            if kind == "categorical":
                k = len(self.columns_[j].categories)
                out.append(np.argmax(e[:, at : at + k], axis=1).astype(np.float64))
                at += k
            else:
                v = np.clip(e[:, at] * self._scale[j] + self._mean[j], *self._range[j])
                out.append(np.round(v) if kind == "integer" else v)
                at += 1
        return np.column_stack(out)

    def _fit(self, codes: np.ndarray, seed: int) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        x, y = codes[:, :-1], codes[:, -1].astype(np.int64)
        self._mean, sd = x.mean(axis=0), x.std(axis=0)
        self._scale = np.where(sd > 0, sd, 1.0)
        self._range = list(zip(x.min(axis=0), x.max(axis=0), strict=True))
        rng = np.random.default_rng([seed, 2])
        smallest = int(np.bincount(y).min())
        if self.classifier == "svc" and smallest < 2:
            raise ValueError(
                f"the svc classifier calibrates its probabilities by cross-validation "
                f"and needs 2 rows of each class of {self.columns_[-1].name!r}; one "
                f"class has 1 - pick another classifier"
            )
        pool = (
            CLASSIFIERS
            if smallest >= 3
            else tuple(c for c in CLASSIFIERS if c != "svc")
        )
        self.classifier_ = self.classifier or str(rng.choice(pool))
        top = max(1, min(self.max_components, len(x) // 10))
        self.mixture_options_ = {
            "n_components": int(rng.integers(1, top + 1)),
            "covariance_type": str(rng.choice(_COVARIANCES)),
            "weight_concentration_prior_type": str(
                rng.choice(("dirichlet_process", "dirichlet_distribution"))
            ),
            "reg_covar": float(10 ** rng.uniform(-4, -2)),
        }
        e = self._embed(x)
        with warnings.catch_warnings():
            # EM / an MLP stopping at max_iter on 128 rows is the CPU-sized budget.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._gmm = BayesianGaussianMixture(
                max_iter=self.max_iter,
                random_state=int(rng.integers(2**31 - 1)),
                **self.mixture_options_,
            ).fit(e)
            self._clf = _classifier(
                self.classifier_, int(rng.integers(2**31 - 1)), min(3, smallest)
            )
            self._clf.fit(e, y)

    def _draw(self, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """m decoded rows and their drawn labels."""
        gmm = self._gmm
        comp = rng.choice(len(gmm.weights_), m, p=gmm.weights_ / gmm.weights_.sum())
        e = np.empty((m, gmm.means_.shape[1]))
        for c in np.unique(comp):
            where = np.flatnonzero(comp == c)
            kind = gmm.covariance_type
            if kind == "full":
                cov = gmm.covariances_[c]
            elif kind == "tied":
                cov = gmm.covariances_
            elif kind == "diag":
                cov = np.diag(gmm.covariances_[c])
            else:
                cov = np.eye(e.shape[1]) * gmm.covariances_[c]
            e[where] = rng.multivariate_normal(gmm.means_[c], cov, len(where))
        x = self._decode(e)
        p = self._clf.predict_proba(self._embed(x))
        u = rng.uniform(size=(m, 1))
        pick = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
        return x, np.asarray(self._clf.classes_)[pick].astype(np.int64)

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        rng = self._rng(seed)
        if labels is None:
            x, lab = self._draw(n, rng)
            return np.column_stack([x, lab.astype(np.float64)])
        out = np.empty((n, len(self.columns_)))
        out[:, -1] = labels
        todo = {int(c): list(np.flatnonzero(labels == c)) for c in np.unique(labels)}
        batch = int(np.ceil(self.oversample * n))
        self.acceptance_ = 0.0
        for _ in range(self.max_rounds):
            x, lab = self._draw(batch, rng)
            for c, where in todo.items():
                got = x[lab == c][: len(where)]
                out[where[: len(got)], :-1] = got
                del where[: len(got)]
                self.acceptance_ += len(got)
            todo = {c: w for c, w in todo.items() if w}
            if not todo:
                break
        if todo:
            short = {self.classes_[c]: len(w) for c, w in todo.items()}
            raise ValueError(
                f"the mixed_model generator's classifier ({self.classifier_}) gave too "
                f"few rows of classes {short} (missing rows) in {self.max_rounds} "
                f"rounds of {batch}; raise max_rounds or oversample, or use a "
                f"conditional generator such as smote or gaussian_copula"
            )
        return out
