"""Plain-dict registries filled by decorators: models, losses, datasets, studies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from harness.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> factory mapping whose lookups fail with the list of valid names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def reject_unknown_options(
    kind: str, name: str, given: Iterable[str], valid: Iterable[str], prefix: str = ""
) -> None:
    """One message for options a model or loss does not take, listing the ones it does."""
    from harness.errors import ConfigError

    valid = sorted(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        listed = ", ".join(f"{prefix}{k}" for k in valid) or "(none)"
        raise ConfigError(
            f"unknown option(s) for {kind} {name!r}: {', '.join(prefix + k for k in unknown)}. "
            f"Valid options: {listed}"
        )
