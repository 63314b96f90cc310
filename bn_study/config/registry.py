"""A registry: the entries of one extension point (datasets, model builders, probes) by name, in the order they were
added. A name asked for that no entry has is refused in one line naming the key and the registered names."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from bn_study.config.validation import ConfigError

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    def __init__(self, key: str):
        self.key = key  # the config key whose value names an entry, e.g. model.name
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, entry: Entry) -> Entry:
        if name in self._entries:
            raise ValueError(f"{self.key}: '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise ConfigError(f"{self.key}={name}: unknown; registered: {', '.join(self._entries)}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[Entry]:
        return list(self._entries.values())

    def items(self) -> list[tuple[str, Entry]]:
        return list(self._entries.items())
