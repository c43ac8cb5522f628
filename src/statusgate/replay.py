"""Re-run stored unmapped and rejected deliveries through today's adapters.

A mapping fix then recovers what arrived before it: each delivery that maps now is
applied with origin REPLAY (the ordering rules still hold, so a stale replay changes
nothing) and its verdict becomes *mapped*. Deliveries that still do not map keep their
verdict (with today's reason as their detail), for the next fix. A running gateway
replays through AdminService instead (``statusgate deliveries replay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from statusgate.config import SourceConfig
from statusgate.core.deliveries import DeliveryVerdict
from statusgate.ingest import Ingest

PAGE = 200


@dataclass
class ReplayReport:
    examined: int = 0
    mapped: int = 0
    events: int = 0
    still_unmapped: int = 0
    still_rejected: int = 0
    unknown_source: int = 0


async def replay(
    ingest: Ingest,
    sources: Mapping[str, SourceConfig],
    *,
    source: str | None = None,
    since: datetime | None = None,
) -> ReplayReport:
    report = ReplayReport()
    after_id = ""
    verdicts = [DeliveryVerdict.UNMAPPED, DeliveryVerdict.REJECTED]
    while True:
        page = await ingest.store.list_deliveries(
            verdicts, source=source, since=since, after_id=after_id, limit=PAGE
        )
        if not page:
            return report
        after_id = page[-1].id
        for delivery in page:
            report.examined += 1
            config = sources.get(delivery.source)
            if config is None:
                report.unknown_source += 1
                continue
            ingested = await ingest.replay(config, delivery)
            match ingested.normalized.verdict:
                case DeliveryVerdict.UNMAPPED:
                    report.still_unmapped += 1
                case DeliveryVerdict.REJECTED:
                    report.still_rejected += 1
                case DeliveryVerdict.MAPPED:
                    report.mapped += 1
                    report.events += len(ingested.result.events)
