"""The search methods, registered in one place, and the order every table and figure lists methods in.

A method is looked up by name here (:func:`search_method`); an unknown name is an error that lists the known ones,
never a default that silently treats it as another method. Tables and figures list the thesis's methods first (in
registration order), then Standard, then every other method: PBLF-BO, PBLF-RS, Standard, PBLF-HG.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pblf.core.errors import ConfigError
from pblf.core.names import STANDARD
from pblf.search.bo import BayesianOptimisation
from pblf.search.hg import Hypergradient
from pblf.search.method import SearchMethod
from pblf.search.rs import RandomSearch

_REGISTERED: dict[str, SearchMethod] = {}


def register(method: SearchMethod) -> SearchMethod:
    """Add ``method``; a second method of the same name (or Standard's) is refused."""
    if method.name in _REGISTERED or method.name == STANDARD:
        raise ValueError(f"a search method named {method.name!r} is already registered")
    _REGISTERED[method.name] = method
    return method


for _method in (BayesianOptimisation(), RandomSearch(), Hypergradient()):
    register(_method)


@contextmanager
def registered(method: SearchMethod) -> Iterator[SearchMethod]:
    """``method`` registered inside the block only (tests add a method this way without touching the package)."""
    register(method)
    try:
        yield method
    finally:
        del _REGISTERED[method.name]


def search_method(name: str) -> SearchMethod:
    """The registered method ``name``."""
    try:
        return _REGISTERED[name]
    except KeyError:
        raise ConfigError(f"{name!r} is not a search method; the registered ones are "
                          f"{', '.join(_REGISTERED)}") from None


def search_methods() -> tuple[str, ...]:
    """Every registered search method, in registration order."""
    return tuple(_REGISTERED)


def methods() -> tuple[str, ...]:
    """Every method of the tables, in their order: the thesis's searches, Standard, then the others."""
    thesis = [name for name, method in _REGISTERED.items() if method.in_thesis]
    return (*thesis, STANDARD, *(name for name in _REGISTERED if name not in thesis))


def sampling_methods() -> tuple[str, ...]:
    """The methods that sample candidates from the search space (Figure 6.3 draws them)."""
    return tuple(name for name, method in _REGISTERED.items() if method.samples)


def learning_methods() -> tuple[str, ...]:
    """The methods whose search run learns its candidate while it trains (the hypergradient figure draws them)."""
    return tuple(name for name, method in _REGISTERED.items() if method.learns)
