"""Symptom choices for the scan page, by device category (hub/scan/symptoms.yaml, or HUB_SCAN_SYMPTOMS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

Choices = list[str]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Choices = Field(min_length=1)
    categories: dict[str, Choices] = Field(default_factory=dict)


@dataclass(frozen=True)
class Symptoms:
    default: tuple[str, ...]
    by_category: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def for_category(self, code: str | None, name: str | None) -> tuple[str, ...]:
        for key in (code, name):
            if key and key in self.by_category:
                return self.by_category[key]
        return self.default


def load_symptoms(path: Path | None = None) -> Symptoms:
    """The configured choices (the bundled file when `path` is None); ConfigError if malformed."""
    try:
        text = (
            path.read_text(encoding="utf-8")
            if path is not None
            else resources.files("hub.scan").joinpath("symptoms.yaml").read_text(encoding="utf-8")
        )
        parsed = _File.model_validate(yaml.safe_load(text))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"scan symptoms {path or '(bundled)'}: {exc}") from exc
    return Symptoms(
        default=tuple(parsed.default),
        by_category={str(k): tuple(v) for k, v in parsed.categories.items() if v},
    )
