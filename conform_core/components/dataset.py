"""Datasets: where subjects come from."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from ..data import StimulusSet, Subject
from ..exceptions import UnknownComponentError
from ..memory import DataSize
from ..validation import suggest
from .base import Component

__all__ = ["Dataset"]


class Dataset(Component):
    """A source of subjects (a folder of files, a simulator, ...).

    Subclasses implement :meth:`subjects` and :meth:`_load_subject`. Loading is lazy:
    nothing is read until a subject is asked for.
    """

    kind: ClassVar[str] = "dataset"
    consumes: ClassVar[tuple[type, ...]] = ()
    produces: ClassVar[type] = Subject

    @abstractmethod
    def subjects(self) -> list[str]:
        """Names of the subjects this dataset holds."""

    @abstractmethod
    def _load_subject(self, name: str) -> Subject:
        """Load one subject (the name is already known to exist)."""

    def load_subject(self, name: str) -> Subject:
        """Load subject ``name``.

        Raises
        ------
        UnknownComponentError
            If there is no subject of that name (with the closest names).
        """
        names = self.subjects()
        if name not in names:
            shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            raise UnknownComponentError(
                f"{type(self).__name__} has no subject {name!r}. Subjects: {shown}.{suggest(name, names)}"
            )
        return self._load_subject(name)

    def data_params(self) -> dict[str, Any]:
        """Return the parameters that describe the data this dataset actually reads.

        ``conform fit`` records them in ``spec.lock.toml``. The default is
        ``get_params()``; a dataset whose folder carries its own settings, which override
        the constructor's (a simulated study written by ``conform simulate``), returns
        those, so the lock describes the data used rather than unused defaults.
        """
        return dict(self.get_params(deep=False))

    def roi_labels(self) -> list[str] | None:
        """Return the ROI labels the dataset's units carry, read without loading trials.

        ``conform fit`` checks ``[dataset] rois`` against them before any work starts.
        Return an empty list when the units carry no ROI labels, and None (the default)
        when they cannot be known without loading a subject (the check is then skipped).
        """
        return None

    def data_size(self, name: str) -> DataSize | None:
        """Return the size of subject ``name``'s data, read without loading it, or None.

        ``conform fit`` hands it to every stage's
        :meth:`~conform_core.components.Component.peak_memory` before any work starts, to
        refuse an analysis that would not fit in memory. ``n_conditions`` counts the
        training stimuli (the ones the denoisers and encoders are fitted on; all stimuli
        as an upper bound when the split is drawn later) and the time series fields are
        set when the subject has time series. None (the default) skips
        the check for this subject; it must cost milliseconds (metadata only).
        """
        return None

    def stimulus_set(self) -> StimulusSet | None:
        """Return the stimuli of the whole dataset, read without loading trials, or None.

        ``conform fit`` hands them to the features' ``check_stimuli`` before any work
        starts (e.g. to report a missing embeddings file at once). None (the default)
        skips that check.
        """
        return None

    def load_subjects(self, names: Sequence[str] | None = None) -> Iterator[Subject]:
        """Yield the subjects ``names`` (default: all), one at a time."""
        for name in self.subjects() if names is None else names:
            yield self.load_subject(name)

    def describe(self) -> dict[str, Any]:
        """Summarise the dataset: subjects, trials, stimuli, units, split.

        The default loads each subject; readers of large files should override it
        with something that reads only metadata.
        """
        rows = []
        for subject in self.load_subjects():
            trials = subject.trials
            n_units = (
                trials.n_units
                if trials is not None
                else (subject.timeseries.n_units if subject.timeseries is not None else 0)
            )
            rows.append(
                {
                    "subject": subject.name,
                    "n_trials": None if trials is None else trials.n_trials,
                    "n_units": n_units,
                    "n_stimuli": subject.stimuli.n_stimuli,
                    "n_runs": None if subject.timeseries is None else subject.timeseries.n_runs,
                    "n_train": int(subject.train_ids.size),
                    "n_test": int(subject.test_ids.size),
                    "has_truth": subject.truth is not None,
                }
            )
        return {"dataset": type(self).__name__, "subjects": rows}
