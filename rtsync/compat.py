"""Old spellings of the clients' constructors, kept for one release with a DeprecationWarning."""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, TypeVar

__all__ = ["renamed_arguments"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed_arguments(positional: int, moved: Sequence[str] = (), renamed: Mapping[str, str] = {},
                      first_was: Optional[Tuple[str, Tuple[str, ...]]] = None) -> Callable[[F], F]:
    """Accept the old calls of an `__init__` whose first `positional` arguments stay positional.

    Arguments after those, passed positionally, go to the keywords named in `moved` (their
    old order); keywords in `renamed` go to their new names. `first_was=(name, prefixes)`: a
    first argument starting with one of `prefixes` is the old first argument `name`, and the
    ones after it follow `moved`. Each old use warns.
    """

    def decorate(init: F) -> F:
        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            owner = type(self).__name__
            if first_was is not None and args and isinstance(args[0], str) and args[0].startswith(first_was[1]):
                # The old order began with another argument (QuickMeet's url): recognised by its value.
                kwargs.setdefault(first_was[0], args[0])
                warnings.warn(f"{owner}(): pass {first_was[0]}= by keyword; credentials come first now",
                              DeprecationWarning, stacklevel=2)
                args = args[1:]
                for name, value in zip(moved, args):
                    kwargs[name] = value
                args = ()
            extra = args[positional:]
            if extra:
                if len(extra) > len(moved):
                    raise TypeError(f"{owner}() takes {positional} positional argument(s); pass the rest by keyword")
                names = list(moved[:len(extra)])
                for name, value in zip(names, extra):
                    if name in kwargs:
                        raise TypeError(f"{owner}() got {name!r} both by position and by keyword")
                    kwargs[name] = value
                warnings.warn(f"{owner}(): pass {', '.join(names)} by keyword ({names[0]}=...); "
                              "positional use goes away in the next release", DeprecationWarning, stacklevel=2)
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{owner}() got both {old}= and {new}=; {old}= is the old name")
                    kwargs[new] = kwargs.pop(old)
                    warnings.warn(f"{owner}(): {old}= is now {new}=; the old name goes away in the next release",
                                  DeprecationWarning, stacklevel=2)
            return init(self, *args[:positional], **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
