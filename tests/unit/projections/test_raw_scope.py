"""raw_scope: the departments an event names, found by walking only the fields that can hold one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from projections.raw_scope.projection import named_departments
from schemas._base import DeptRef
from schemas.catalogue import EVENT_CLASSES
from tests.unit.projections.factories import registered, relocated


def _every_field(value: Any) -> list[DeptRef]:
    """The plain walk: every field of every model, list and dict."""
    if isinstance(value, DeptRef):
        return [value] if value.code or value.name else []
    if isinstance(value, BaseModel):
        return [d for name in type(value).model_fields for d in _every_field(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [d for v in value for d in _every_field(v)]
    if isinstance(value, dict):
        return [d for v in value.values() for d in _every_field(v)]
    return []


def test_departments_are_those_a_walk_of_every_field_finds() -> None:
    events = [
        registered("r", "AST-1"),
        registered("r2", "AST-2", department=None),
        relocated("m", "AST-1", code="D01", name="心内科", location="3F"),
        relocated("m2", "AST-1", code=None, name=None),
    ]
    found = [list(named_departments(e.payload)) for e in events]
    assert found == [_every_field(e.payload) for e in events]
    assert [[d.code for d in f] for f in found] == [["ICU"], [], ["D01"], []]


def test_every_payload_field_skipped_holds_no_model() -> None:
    """A field is skipped only when its type admits no model at all (so no DeptRef either)."""
    from projections.raw_scope.projection import _may_hold

    def admits_model(annotation: Any) -> bool:
        text = repr(annotation)
        return (
            "BaseModel" in text
            or any(
                isinstance(a, type) and issubclass(a, BaseModel) for a in getattr(annotation, "__args__", ())
            )
            or (isinstance(annotation, type) and issubclass(annotation, BaseModel))
        )

    seen: set[type[BaseModel]] = set()
    todo = [cls.model_fields["payload"].annotation for cls in EVENT_CLASSES.values()]
    skipped = 0
    while todo:
        model = todo.pop()
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or model in seen:
            continue
        seen.add(model)
        for field in model.model_fields.values():
            if _may_hold(field.annotation):
                todo.extend(getattr(field.annotation, "__args__", ()) or (field.annotation,))
            else:
                skipped += 1
                assert not admits_model(field.annotation), (model, field)
    assert skipped > 0


def test_containers_are_walked_only_when_their_items_may_hold_a_department() -> None:
    """A block's hundreds of [time, value] readings are skipped; a list or dict of models is not."""
    from pydantic import AwareDatetime

    from projections.raw_scope.projection import _may_hold
    from schemas.facility import MeterReadingsPayload

    assert not _may_hold(MeterReadingsPayload.model_fields["readings"].annotation)
    assert not _may_hold(list[tuple[AwareDatetime, int]])
    assert not _may_hold(dict[str, list[str]])
    assert not _may_hold(tuple[str, ...])
    assert _may_hold(list[DeptRef])
    assert _may_hold(tuple[str, DeptRef])
    assert _may_hold(dict[str, list[DeptRef]])
    assert _may_hold(list[Any])
