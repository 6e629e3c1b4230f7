"""The base of every component: scikit-learn manners plus declared inputs and outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sklearn.base import BaseEstimator

from ..constraints import check_constraints, check_declared_names
from ..exceptions import NotFittedError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..memory import DataSize

__all__ = ["Component", "check_is_fitted"]


class Component(BaseEstimator):
    """Base class of every conform component.

    Subclasses follow scikit-learn's rules: ``__init__`` stores its keyword arguments
    unchanged and does nothing else; validation happens in ``fit``; fitted state lives in
    attributes ending in ``_``; ``get_params``/``set_params``/``clone`` come for free.

    Class attributes
    ----------------
    kind : str
        One of ``"dataset"``, ``"denoiser"``, ``"aligner"``, ``"encoder"``, ``"features"``.
    consumes : tuple of type
        Container types accepted as input (so a pipeline can be checked before it runs).
    produces : type
        Container type returned.
    _parameter_constraints : dict of str to list
        What each constructor parameter may be, checked by :meth:`check_params`: a list of
        alternatives per parameter, e.g. ``{"n_components": [Interval(int, 1, None), None]}``
        (see :mod:`conform_core.constraints`). Undeclared parameters are not checked.
    _parameter_fixes : dict of str to str
        How to fix a bad value of a parameter, appended to its error message.
    """

    kind: ClassVar[str] = ""
    consumes: ClassVar[tuple[type, ...]] = ()
    produces: ClassVar[type] = object
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}
    _parameter_fixes: ClassVar[dict[str, str]] = {}

    @classmethod
    def param_names(cls) -> list[str]:
        """Return the names of the constructor parameters, sorted.

        scikit-learn's rule: every ``__init__`` keyword is a parameter, stored under its own
        name.
        """
        return list(cls._get_param_names())

    def check_params(self) -> None:
        """Check the parameter values that can be checked without data.

        ``conform fit`` calls this for every cell of an analysis before any work starts
        (``conform fit SPEC --check`` does nothing else), and every kind's public ``fit``
        calls it first, so a bad value fails the same way in both places.

        The default checks each parameter declared in ``_parameter_constraints`` (types,
        ranges, choices, files that must exist; see :mod:`conform_core.constraints`), with
        the fixes of ``_parameter_fixes``, then calls :meth:`_check_params_extra` for the
        rules between parameters. Checks that need the data (e.g.
        ``n_components <= n_units``) stay in ``fit``. Override :meth:`_check_params_extra`,
        not this method.

        Raises
        ------
        ParameterError
            Naming the parameter, the value, what is allowed and the fix.
        TypeError
            If ``_parameter_constraints`` or ``_parameter_fixes`` names something that is not
            a constructor parameter (a bug in the component).
        """
        cls = type(self)
        constraints = cls._parameter_constraints
        if not constraints and not cls._parameter_fixes:
            self._check_params_extra()
            return
        check_declared_names(constraints, cls.param_names(), owner=cls.__name__,
                             fixes=cls._parameter_fixes)
        check_constraints(constraints, {name: getattr(self, name) for name in constraints},
                          owner=cls.__name__, fixes=cls._parameter_fixes)
        self._check_params_extra()

    def _check_params_extra(self) -> None:
        """Data-independent checks beyond the declarations (e.g. between parameters).

        Called by :meth:`check_params` after every declared parameter passed. The default
        checks nothing. Raise :class:`~conform_core.exceptions.ParameterError` naming the
        parameter (``param=``), as the declarations do.
        """

    def peak_memory(self, size: DataSize) -> int | None:
        """Return the bytes this component allocates at its peak on data of ``size``.

        ``conform fit`` calls it before any work starts, with the size each subject's data
        has for this stage (:meth:`~conform_core.components.Dataset.data_size`), and refuses
        a cell whose figure exceeds the memory a task may use (``--mem``, else the memory
        available, shared by the tasks that run at once). Count the arrays allocated while
        fitting on and applying to data of that size (numpy's allocations; neither the
        input data nor the interpreter's ~250 MB); an upper bound is fine. It must cost
        microseconds: compute it from the size and the parameters, never by running.

        Returns
        -------
        int or None
            Bytes; None (the default) when unknown, which skips the check.
        """
        return None

    def lighter_settings(self, size: DataSize) -> list[dict[str, Any]]:
        """Return parameter settings that need less memory on data of ``size`` than these.

        When :meth:`peak_memory` exceeds what a task may use, ``conform fit`` computes the
        peak of each setting (this component with those parameters set) and names the ones
        that fit in its refusal, e.g. ``--set denoiser.covariance=lowrank``. The default,
        an empty list, offers none.
        """
        return []

    def check_roi_labels(self, labels: Sequence[str]) -> None:
        """Check these parameters against the ROI labels of the units it will be fitted on.

        ``conform fit`` calls it before any work starts, with the dataset's ROI labels
        (:meth:`~conform_core.components.Dataset.roi_labels`; those of ``[dataset] rois``
        when the analysis is restricted to them; an empty list when the units carry no
        labels), so that a setting that needs labels the data lack is refused before the
        fit rather than in every cell. Raise :class:`~conform_core.ParameterError` naming
        the parameter. The default accepts any labels.
        """

    def _fitted_attributes(self) -> list[str]:
        return [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]


def check_is_fitted(component: Any, attributes: list[str] | None = None) -> None:
    """Raise :class:`NotFittedError` if ``component`` has not been fitted.

    Parameters
    ----------
    component : Component
        The component to check.
    attributes : list of str or None
        Attributes that must exist; default: any attribute ending in ``_``.
    """
    present = [k for k in vars(component) if k.endswith("_") and not k.startswith("__")]
    missing = (
        [a for a in attributes if not hasattr(component, a)]
        if attributes
        else ([] if present else ["*_"])
    )
    if missing:
        raise NotFittedError(
            f"This {type(component).__name__} is not fitted yet. Call fit(...) before using it."
        )
