"""Finbox adapter (placeholder until its mapping lands)."""

from __future__ import annotations

from typing import ClassVar

from statusgate.config import SourceConfig
from statusgate.providers.base import JSONObject, UnknownShapeError
from statusgate.v1.status_pb2 import Provider, Status


class FinboxAdapter:
    provider: ClassVar[Provider.ValueType] = Provider.PROVIDER_FINBOX

    def normalize(self, source: SourceConfig, payload: JSONObject) -> list[Status]:
        raise UnknownShapeError("no mapping yet")
