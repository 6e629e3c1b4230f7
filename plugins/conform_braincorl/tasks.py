"""Meta-training tasks: one task is one voxel, with a context and a query set of images.

A task gives the network a voxel's responses to ``n`` context images and asks it for a
readout that predicts the voxel's responses to ``n_query`` other images. The context and
query images of a task are drawn together, without replacement, from the stimuli the task's
source may use, so no query image is ever in its own context. One batch shares one context
size (tensors stay rectangular); :func:`draw_batch` draws it from ``Uniform{lo..hi}``.

Two sources of tasks:

:class:`SubjectTaskSampler`
    Voxels of real (or simulated) training subjects: per subject a :class:`SubjectPool`
    holding the unit-normalised embeddings and the condition means (mean over trials) of
    the stimuli that subject may train on. A voxel is drawn uniformly among all voxels of
    all subjects (a subject with more voxels gives more tasks, as in the official code).
:class:`PriorTaskSampler`
    "Data by synthesis" (stage 1 of the BraInCoRL recipe): synthetic voxels whose readout
    ``(w, b)`` is drawn from a Gaussian fitted to the readouts of real voxels, applied to
    real embeddings, plus Gaussian noise. :meth:`PriorTaskSampler.from_pools` fits it: the
    ``ridge`` encoder (looked up in the registry) is fitted on each training subject's
    allowed stimuli; the mean vector and covariance of the ``(w, b)`` of every voxel are the
    prior, and the median over voxels of the cross-validated residual variance is the
    noise variance; the images are the union of the training subjects' allowed stimuli.

Embeddings are always unit-normalised (rows divided by their L2 norm), as the model
expects; :class:`SubjectPool` records it (``normalized = True``).

A batch is a pure function of ``(seed, stage index, step)`` (:func:`draw_batch` seeds a
``numpy.random.default_rng([seed, stage, step])``), so a resumed training run sees exactly
the batches an uninterrupted one would.

:func:`load_subject_pools` builds the pools of named subjects from any dataset plugin and
any features plugin, leaving out each subject's test stimuli and, by default, every
stimulus of any subject's test split (:func:`held_out_stimuli`).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError, ShapeError
from conform_core.validation import check_float_array, check_ids, read_only

from ._embeddings import unit_normalize

__all__ = [
    "TaskBatch",
    "SubjectPool",
    "TaskSampler",
    "SubjectTaskSampler",
    "PriorTaskSampler",
    "draw_batch",
    "draw_validation",
    "unit_normalize",
    "VALIDATION_STREAM",
]

#: Second seed word of the validation draw (stage indices are small, so it never meets one).
VALIDATION_STREAM = 2**31 - 1


@dataclass(frozen=True, eq=False)
class TaskBatch:
    """A batch of tasks (voxels) sharing one context size.

    Parameters
    ----------
    context_x : ndarray of shape (n_tasks, n_context, n_features), float32
    context_y : ndarray of shape (n_tasks, n_context), float32
    query_x : ndarray of shape (n_tasks, n_query, n_features), float32
    query_y : ndarray of shape (n_tasks, n_query), float32
    """

    context_x: NDArray[np.float32]
    context_y: NDArray[np.float32]
    query_x: NDArray[np.float32]
    query_y: NDArray[np.float32]

    @property
    def n_tasks(self) -> int:
        """Tasks (voxels) in the batch."""
        return int(self.context_y.shape[0])

    @property
    def n_context(self) -> int:
        """Context images per task."""
        return int(self.context_y.shape[1])

    @property
    def n_query(self) -> int:
        """Query images per task."""
        return int(self.query_y.shape[1])

    def to_torch(self, device: Any = "cpu") -> tuple[Any, Any, Any, Any]:
        """Return the four arrays as float32 tensors on ``device``."""
        from ._torch import torch

        return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device)  # type: ignore[return-value]
                     for a in (self.context_x, self.context_y, self.query_x, self.query_y))

    def take(self, index: slice | NDArray[np.intp]) -> TaskBatch:
        """Return the tasks at ``index`` (a slice or positions)."""
        return TaskBatch(self.context_x[index], self.context_y[index], self.query_x[index],
                         self.query_y[index])


@dataclass(frozen=True, eq=False)
class SubjectPool:
    """What one subject offers to meta-training: its allowed stimuli and voxels.

    Build it with :meth:`from_arrays` (in-memory arrays) or :func:`load_subject_pools`
    (any dataset plugin).

    Parameters
    ----------
    name : str
        The subject.
    embeddings : ndarray of shape (n_stimuli, n_features), float32
        Unit-normalised embeddings of the allowed stimuli.
    responses : ndarray of shape (n_stimuli, n_voxels), float32
        Condition means (mean over trials) of every voxel, finite.
    stimulus_ids : ndarray of shape (n_stimuli,), dtype str
        Ids of the allowed stimuli, in the order of the rows.
    n_dropped_voxels : int, default=0
        Voxels left out because a response was not finite (a voxel not measured).
    normalized : bool, default=True
        Embeddings are unit-normalised (always; recorded for provenance).
    """

    name: str
    embeddings: NDArray[np.float32]
    responses: NDArray[np.float32]
    stimulus_ids: NDArray[np.str_]
    n_dropped_voxels: int = 0
    normalized: bool = field(default=True, init=False)

    @classmethod
    def from_arrays(cls, name: str, embeddings: Any, responses: Any, *,
                    allowed: Any = None, stimulus_ids: Any = None) -> SubjectPool:
        """Build a pool from arrays: keep the allowed stimuli, normalise, drop NaN voxels.

        Parameters
        ----------
        name : str
            The subject.
        embeddings : array of shape (n_stimuli, n_features)
            Image embeddings (normalised here).
        responses : array of shape (n_stimuli, n_voxels)
            Condition means; a voxel with a non-finite value at an allowed stimulus is
            dropped (counted in ``n_dropped_voxels``).
        allowed : array of bool of shape (n_stimuli,), optional
            The stimuli meta-training may use (default: all).
        stimulus_ids : array of str of shape (n_stimuli,), optional
            Default ``"0"``, ``"1"``, ...

        Raises
        ------
        ShapeError
            For mismatched shapes, non-finite embeddings, or no voxel left.
        """
        x = check_float_array(embeddings, ndim=2, name=f"embeddings of subject {name!r}",
                              axes="(stimuli, features)")
        y = check_float_array(responses, ndim=2, name=f"responses of subject {name!r}",
                              axes="(stimuli, voxels)", allow_nan=True,
                              nan_meaning="voxel not measured")
        n = x.shape[0]
        if y.shape[0] != n:
            raise ShapeError(
                f"Subject {name!r}: embeddings have {n} rows but responses {y.shape[0]}; both "
                "need one row per stimulus, in the same order.")
        ids = (np.arange(n).astype(str) if stimulus_ids is None
               else check_ids(stimulus_ids, n=n, name=f"stimulus_ids of subject {name!r}"))
        keep = np.ones(n, bool) if allowed is None else np.asarray(allowed, dtype=bool)
        if keep.shape != (n,):
            raise ShapeError(f"Subject {name!r}: allowed must be a boolean mask of shape ({n},); "
                             f"got shape {keep.shape}.")
        y = y[keep]
        finite = np.isfinite(y).all(axis=0)
        if not finite.any():
            raise ShapeError(
                f"Subject {name!r}: every voxel has a non-finite response at some allowed "
                "stimulus, so no voxel can be a task. Check the dataset's responses (NaN marks "
                "a voxel that was not measured).")
        return cls(name=str(name), embeddings=read_only(unit_normalize(x[keep]).astype(np.float32)),
                   responses=read_only(np.ascontiguousarray(y[:, finite], dtype=np.float32)),
                   stimulus_ids=read_only(ids[keep]), n_dropped_voxels=int((~finite).sum()))

    @property
    def n_stimuli(self) -> int:
        """Allowed stimuli."""
        return int(self.embeddings.shape[0])

    @property
    def n_voxels(self) -> int:
        """Voxels (tasks) of this subject."""
        return int(self.responses.shape[1])

    @property
    def embed_dim(self) -> int:
        """Length of an embedding."""
        return int(self.embeddings.shape[1])

    def describe(self) -> dict[str, Any]:
        """Return the counts recorded in a checkpoint: stimuli, voxels, dropped voxels."""
        return {"stimuli": self.n_stimuli, "voxels": self.n_voxels,
                "dropped_voxels": self.n_dropped_voxels}


def _digest(*arrays: NDArray[Any]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes() if a.dtype.kind != "U" else "\0".join(a.tolist()).encode())
    return h.hexdigest()


class TaskSampler(ABC):
    """Draws batches of tasks; see :class:`SubjectTaskSampler` and :class:`PriorTaskSampler`.

    Subclasses implement :meth:`sample`, :attr:`embed_dim`, :attr:`max_images` and
    :meth:`fingerprint`.
    """

    #: Short name of the source (``"subjects"``, ``"prior"``).
    source: ClassVar[str] = ""

    @property
    @abstractmethod
    def embed_dim(self) -> int:
        """Length of the embeddings."""

    @property
    @abstractmethod
    def max_images(self) -> int:
        """The most context + query images one task can draw (without replacement)."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, n_tasks: int, n_context: int,
               n_query: int) -> TaskBatch:
        """Draw ``n_tasks`` tasks with ``n_context`` context and ``n_query`` query images."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Return a SHA-256 of what the sampler draws from (a resumed run checks it)."""

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready summary (recorded with the training)."""
        return {"source": self.source}

    def check_capacity(self, n_images: int, what: str = "") -> None:
        """Raise unless every task can draw ``n_images`` distinct images.

        Raises
        ------
        ParameterError
            Naming the source, how many images it has, and the fix.
        """
        if n_images > self.max_images:
            raise ParameterError(
                f"The {self.source!r} tasks{what} need {n_images} distinct images per task "
                f"(context + query), but they can draw from only {self.max_images}.",
                param="context", value=n_images, owner="meta-training",
                fix="Lower the upper context size or n_query, or give the subjects more "
                    "training stimuli.")


class SubjectTaskSampler(TaskSampler):
    """Tasks from the voxels of subjects (see :class:`SubjectPool`).

    Parameters
    ----------
    pools : sequence of SubjectPool
        One per subject; their embeddings must have the same length.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pool = SubjectPool.from_arrays("s1", rng.normal(size=(50, 8)), rng.normal(size=(50, 30)))
    >>> batch = SubjectTaskSampler([pool]).sample(rng, n_tasks=4, n_context=10, n_query=5)
    >>> batch.context_x.shape, batch.query_y.shape
    ((4, 10, 8), (4, 5))
    """

    source: ClassVar[str] = "subjects"

    def __init__(self, pools: Sequence[SubjectPool]) -> None:
        pools = list(pools)
        if not pools:
            raise ParameterError(param="pools", value=[], owner="SubjectTaskSampler",
                                 allowed="at least one SubjectPool",
                                 fix="Give it the training subjects' pools.")
        dims = {p.embed_dim for p in pools}
        if len(dims) > 1:
            raise ShapeError(
                f"The subjects' embeddings have different lengths {sorted(dims)} "
                f"({', '.join(f'{p.name}: {p.embed_dim}' for p in pools)}). Use one features "
                "plugin for every subject.")
        self.pools = pools
        self._offsets = np.cumsum([0] + [p.n_voxels for p in pools])

    @property
    def embed_dim(self) -> int:
        """Length of the embeddings."""
        return self.pools[0].embed_dim

    @property
    def max_images(self) -> int:
        """Allowed stimuli of the subject with the fewest."""
        return min(p.n_stimuli for p in self.pools)

    @property
    def n_voxels(self) -> int:
        """Voxels of all subjects together."""
        return int(self._offsets[-1])

    def check_capacity(self, n_images: int, what: str = "") -> None:
        """Raise unless every subject has ``n_images`` allowed stimuli, naming the first short one.

        Raises
        ------
        ParameterError
            Naming the subject, its count of allowed stimuli, and the fix.
        """
        for pool in self.pools:
            if pool.n_stimuli < n_images:
                raise ParameterError(
                    f"Subject {pool.name!r} has {pool.n_stimuli} stimuli meta-training may use "
                    f"(its test stimuli, and by default every test stimulus of the dataset, are "
                    f"left out), but a task{what} needs {n_images} distinct ones (the upper "
                    "context size plus n_query).", param="context", value=n_images,
                    owner="meta-training",
                    fix=f"Lower the stages' upper context size or n_query so that they add up "
                        f"to at most {pool.n_stimuli}, or leave {pool.name!r} out of the "
                        "subjects.")

    def sample(self, rng: np.random.Generator, n_tasks: int, n_context: int,
               n_query: int) -> TaskBatch:
        """Draw ``n_tasks`` voxels (uniform over all voxels) and their images.

        Each task's ``n_context + n_query`` images are drawn without replacement from its
        subject's allowed stimuli; the first ``n_context`` are the context.
        """
        k = n_context + n_query
        self.check_capacity(k)
        flat = rng.integers(0, self.n_voxels, size=n_tasks)
        which = np.searchsorted(self._offsets, flat, side="right") - 1
        e = self.embed_dim
        xs = np.empty((n_tasks, k, e), np.float32)
        ys = np.empty((n_tasks, k), np.float32)
        for i, (s, v) in enumerate(zip(which, flat - self._offsets[which])):
            pool = self.pools[s]
            idx = rng.choice(pool.n_stimuli, size=k, replace=False)
            xs[i] = pool.embeddings[idx]
            ys[i] = pool.responses[idx, v]
        return TaskBatch(xs[:, :n_context], ys[:, :n_context], xs[:, n_context:],
                         ys[:, n_context:])

    def fingerprint(self) -> str:
        """Return a SHA-256 of every pool's ids, embeddings and responses."""
        return _digest(*(a for p in self.pools
                         for a in (np.array([p.name]), p.stimulus_ids, p.embeddings,
                                   p.responses)))

    def describe(self) -> dict[str, Any]:
        """Return the subjects with their counts of stimuli and voxels."""
        return {"source": self.source, "subjects": {p.name: p.describe() for p in self.pools}}


class PriorTaskSampler(TaskSampler):
    """Synthetic voxels: readouts from a Gaussian prior, real images, Gaussian noise.

    A task's voxel has readout ``(w, b) ~ N(mean, cov)``; its response to image ``x``
    (a unit-normalised embedding) is ``x · w + b + e`` with ``e ~ N(0, noise_var)``.

    Parameters
    ----------
    mean : array of shape (n_features + 1,)
        Mean readout (weights, then bias).
    cov : array of shape (n_features + 1, n_features + 1)
        Covariance of the readouts (symmetric positive semi-definite).
    noise_var : float
        Variance of the response noise (>= 0).
    embeddings : array of shape (n_images, n_features)
        The images tasks draw from (normalised here).

    See Also
    --------
    PriorTaskSampler.from_pools : fit the prior to training subjects.
    """

    source: ClassVar[str] = "prior"

    def __init__(self, mean: Any, cov: Any, noise_var: float, embeddings: Any) -> None:
        x = check_float_array(embeddings, ndim=2, name="embeddings", axes="(images, features)")
        e = x.shape[1]
        mean = np.asarray(mean, dtype=np.float64)
        cov = np.asarray(cov, dtype=np.float64)
        if mean.shape != (e + 1,) or cov.shape != (e + 1, e + 1):
            raise ShapeError(
                f"A prior over readouts of {e}-d embeddings needs mean of shape ({e + 1},) and "
                f"cov of shape ({e + 1}, {e + 1}) (weights then bias); got {mean.shape} and "
                f"{cov.shape}.")
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise ShapeError("The prior's mean and covariance must be finite.")
        if not np.isfinite(noise_var) or noise_var < 0:
            raise ParameterError(param="noise_var", value=noise_var, owner="PriorTaskSampler",
                                 allowed="a finite number >= 0",
                                 fix="Pass the residual variance of a fitted encoder.")
        s, v = np.linalg.eigh((cov + cov.T) / 2)
        self.mean = mean
        self.cov = cov
        self.noise_var = float(noise_var)
        self.embeddings = unit_normalize(x).astype(np.float32)
        self._factor = v * np.sqrt(np.clip(s, 0.0, None))

    @classmethod
    def from_pools(cls, pools: Sequence[SubjectPool], *, encoder: Any = None) -> PriorTaskSampler:
        """Fit the prior to the voxels of ``pools`` ("data by synthesis").

        Parameters
        ----------
        pools : sequence of SubjectPool
            The training subjects.
        encoder : Encoder, optional
            A linear encoder to fit per subject (default: the registry's ``ridge`` with
            its default parameters). Its readout is read through ``predict``:
            ``b = predict(0)``, ``w = predict(I) - b``, so any linear encoder works.

        Notes
        -----
        The noise variance is the median over voxels of the residual variance of the fit:
        ``(1 - best cross-validated R²) · Var(y)`` when the encoder reports ``cv_scores_``
        (as ``ridge`` does), else the in-sample residual variance. Ridge readouts are
        shrunk, so the prior is somewhat narrower than the true spread of tunings; the
        subjects stage of the curriculum corrects that.
        """
        from sklearn.base import clone

        if encoder is None:
            from conform_core.plugins import default_registry

            encoder = default_registry().get("encoder", "ridge")()
        readouts, noise = [], []
        seen: dict[str, NDArray[np.float32]] = {}
        for pool in pools:
            fitted = clone(encoder).fit(pool.embeddings, pool.responses)
            e = pool.embed_dim
            b = np.asarray(fitted.predict(np.zeros((1, e), np.float32)), dtype=np.float64)
            w = np.asarray(fitted.predict(np.eye(e, dtype=np.float32)), dtype=np.float64) - b
            readouts.append(np.vstack([w, b]).T)  # (voxels, e + 1)
            var = pool.responses.var(axis=0, dtype=np.float64)
            scores = getattr(fitted, "cv_scores_", None)
            if scores is not None and np.shape(scores)[-1] == pool.n_voxels:
                best = np.max(np.reshape(scores, (-1, pool.n_voxels)), axis=0)
                noise.append(np.clip(1.0 - best, 0.0, None) * var)
            else:
                residual = pool.responses - fitted.predict(pool.embeddings)
                noise.append(np.var(residual, axis=0, dtype=np.float64))
            for sid, row in zip(pool.stimulus_ids.tolist(), pool.embeddings):
                seen.setdefault(sid, row)
        all_readouts = np.concatenate(readouts)
        mean = all_readouts.mean(axis=0)
        cov = (np.cov(all_readouts, rowvar=False) if len(all_readouts) > 1
               else np.zeros((len(mean), len(mean))))
        return cls(mean, cov, float(np.median(np.concatenate(noise))),
                   np.stack(list(seen.values())))

    @property
    def embed_dim(self) -> int:
        """Length of the embeddings."""
        return int(self.embeddings.shape[1])

    @property
    def max_images(self) -> int:
        """Images the prior's tasks draw from."""
        return int(self.embeddings.shape[0])

    def sample(self, rng: np.random.Generator, n_tasks: int, n_context: int,
               n_query: int) -> TaskBatch:
        """Draw ``n_tasks`` synthetic voxels and their responses to random images."""
        k = n_context + n_query
        self.check_capacity(k)
        e = self.embed_dim
        readout = self.mean + rng.standard_normal((n_tasks, e + 1)) @ self._factor.T
        idx = np.stack([rng.choice(self.max_images, size=k, replace=False)
                        for _ in range(n_tasks)])
        xs = self.embeddings[idx]  # (n_tasks, k, e)
        ys = np.einsum("tke,te->tk", xs.astype(np.float64), readout[:, :e]) + readout[:, e:]
        ys += np.sqrt(self.noise_var) * rng.standard_normal(ys.shape)
        ys = ys.astype(np.float32)
        return TaskBatch(xs[:, :n_context], ys[:, :n_context], xs[:, n_context:],
                         ys[:, n_context:])

    def fingerprint(self) -> str:
        """Return a SHA-256 of the prior and its images."""
        return _digest(self.mean, self.cov, np.array([self.noise_var]), self.embeddings)

    def describe(self) -> dict[str, Any]:
        """Return the prior's size, noise variance and number of images."""
        return {"source": self.source, "images": self.max_images,
                "noise_var": self.noise_var,
                "readout_variance": float(np.trace(self.cov[:-1, :-1])),
                "bias_mean": float(self.mean[-1])}


def draw_batch(sampler: TaskSampler, *, seed: int, stage: int, step: int, n_tasks: int,
               context: tuple[int, int], n_query: int) -> TaskBatch:
    """Draw the batch of step ``step`` of stage ``stage``: a pure function of its arguments.

    The context size is drawn from ``Uniform{lo..hi}`` (``context = (lo, hi)``), then the
    tasks, all from ``numpy.random.default_rng([seed, stage, step])``.
    """
    rng = np.random.default_rng([seed, stage, step])
    lo, hi = context
    n = int(rng.integers(lo, hi + 1))
    return sampler.sample(rng, n_tasks, n, n_query)


def draw_validation(sampler: TaskSampler, *, seed: int, n_tasks: int, n_context: int,
                    n_query: int) -> TaskBatch:
    """Draw the fixed validation tasks (the same for every call with the same arguments)."""
    rng = np.random.default_rng([seed, VALIDATION_STREAM])
    return sampler.sample(rng, n_tasks, n_context, n_query)
