"""The base of every component: scikit-learn manners plus declared inputs and outputs."""

from __future__ import annotations

from typing import Any, ClassVar

from sklearn.base import BaseEstimator

from ..exceptions import NotFittedError

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
    """

    kind: ClassVar[str] = ""
    consumes: ClassVar[tuple[type, ...]] = ()
    produces: ClassVar[type] = object

    @classmethod
    def _contract_instances(cls) -> list[Component]:
        """Instances the contract kit checks (default: one with default parameters).

        Override when a default instance cannot run (e.g. a dataset needs files: create
        small ones in a temporary folder here).
        """
        return [cls()]

    def check_params(self) -> None:
        """Check the parameter values that can be checked without data.

        ``conform fit`` calls this for every cell of an analysis before any work starts
        (``conform fit SPEC --check`` does nothing else), and every kind's public ``fit``
        calls it first, so a bad value fails the same way in both places. The default
        checks nothing; components override it with the data-independent part of their
        validation (types, ranges, choices, files that must exist). Checks that need the
        data (e.g. ``n_components <= n_units``) stay in ``fit``.

        Raises
        ------
        ParameterError
            Naming the parameter, the value, what is allowed and the fix.
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
    missing = [a for a in attributes if not hasattr(component, a)] if attributes else ([] if present else ["*_"])
    if missing:
        raise NotFittedError(
            f"This {type(component).__name__} is not fitted yet. Call fit(...) before using it."
        )
