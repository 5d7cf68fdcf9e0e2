"""Name → object registries, for covariance families and initializers.

One lookup with one kind of error: an unknown name raises a ValueError that
lists the valid names, so a typo in ``covariance_type`` or ``init_params`` is
fixed from the message alone.

>>> methods = Registry("method", "methods")
>>> methods["fast"] = len
>>> methods.lookup("slow")
Traceback (most recent call last):
...
ValueError: Unknown method 'slow'. Valid methods are: 'fast'.
"""

from __future__ import annotations

from typing import Any


class Registry(dict):
    """A dict of registered objects whose :meth:`lookup` explains a miss.

    Parameters
    ----------
    parameter : str
        The argument whose values are the names (for the message).
    plural : str
        How the message calls the valid names.
    hint : str, default=''
        Appended to the list of valid names (e.g. other accepted forms).
    """

    def __init__(self, parameter: str, plural: str, hint: str = "") -> None:
        super().__init__()
        self.parameter = parameter
        self.plural = plural
        self.hint = hint

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self)

    def lookup(self, name: Any) -> Any:
        """The object registered as ``name``; ValueError listing the valid names."""
        try:
            return self[name]
        except (KeyError, TypeError):
            valid = ", ".join(repr(n) for n in self)
            raise ValueError(
                f"Unknown {self.parameter} {name!r}. Valid {self.plural} are: {valid}{self.hint}."
            ) from None
