"""Plain-dict registries filled by decorators: models, losses, tasks, datasets, studies.

``Registry`` maps names to entries. ``OptionRegistry`` is the one mechanism behind
models, losses and tasks: each entry is a factory whose leading parameters are fixed
(the caller supplies them: class counts, input shape) and whose remaining keyword
parameters, each with a default, are the user's options (``model.blocks``,
``loss.beta``, ``task.noise``). The signature is the single source of truth for what an
entry accepts, and each entry may carry a few facts (``output``: what kind of model
output it makes or scores) that tasks use to say which models and losses fit them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from harness.errors import ConfigError, RegistryError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[T]):
    """A name -> entry mapping whose lookups fail with the list of valid names."""

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


class OptionRegistry(Registry[F]):
    """Factories ``fn(*fixed, **options)`` with defaults for every option, plus facts."""

    def __init__(self, kind: str, fixed: tuple[str, ...]) -> None:
        super().__init__(kind)
        self.fixed = fixed
        self._facts: dict[str, dict[str, Any]] = {}

    def register(  # type: ignore[override]
        self, name: str, *, fixed: tuple[str, ...] | None = None, **facts: Any
    ) -> Callable[[F], F]:
        """Register ``fn`` under ``name``; ``fixed`` names its leading parameters when they
        differ from the registry's (an image model takes ``out_channels``, not classes)."""
        leading = self.fixed if fixed is None else fixed

        def decorator(factory: F) -> F:
            params = list(inspect.signature(factory).parameters.values())
            if tuple(p.name for p in params[: len(leading)]) != leading:
                raise ValueError(
                    f"{self.kind} factory {name!r} must start with ({', '.join(leading)})"
                )
            missing = [p.name for p in params[len(leading):] if p.default is inspect.Parameter.empty]
            if missing:
                raise ValueError(f"{self.kind} factory {name!r}: options without defaults: {missing}")
            Registry.register(self, name)(factory)
            self._facts[name] = {"fixed": leading, **facts}
            return factory

        return decorator

    def options(self, name: str) -> dict[str, Any]:
        """Option -> default for entry ``name`` (RegistryError if the name is unknown)."""
        factory = self.get(name)
        skip = len(self._facts[name]["fixed"])
        return {p.name: p.default for p in list(inspect.signature(factory).parameters.values())[skip:]}

    def output(self, name: str) -> str:
        """"classes" or "image": what entry ``name`` outputs, or the output it scores."""
        return self.fact(name, "output")

    def fact(self, name: str, key: str) -> Any:
        self.get(name)
        return self._facts[name].get(key)

    def names_where(self, key: str, value: Any) -> list[str]:
        return [n for n in self.names() if self._facts[n].get(key) == value]

    def create(self, name: str, *fixed: Any, **options: Any) -> Any:
        """Call the factory after checking ``options`` against its signature."""
        factory = self.get(name)
        reject_unknown_options(self.kind, name, options, self.options(name))
        return factory(*fixed, **{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in options.items()})


def reject_unknown_options(
    kind: str, name: str, given: Iterable[str], valid: Iterable[str], prefix: str = ""
) -> None:
    """One message for options a model, loss or task does not take, listing the ones it does."""
    valid = sorted(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        listed = ", ".join(f"{prefix}{k}" for k in valid) or "(none)"
        raise ConfigError(
            f"unknown option(s) for {kind} {name!r}: {', '.join(prefix + k for k in unknown)}. "
            f"Valid options: {listed}"
        )


def describe_options(defaults: Mapping[str, Any]) -> str:
    """``a=1, b=x`` for `harness list`."""
    return ", ".join(f"{k}={v}" for k, v in defaults.items()) or "-"
