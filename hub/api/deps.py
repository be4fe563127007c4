"""FastAPI dependencies as `Annotated` aliases: the hub's services, one each, and a read-model connection.

The app (`HubApi`, built by hub.api.app.build_api) carries its `ApiServices`; routes declare the
service they use (`bus: BusDep`) and never look at the app's state. Tests replace a service with
FastAPI's `dependency_overrides` on the getter, or build the hub with an override.
"""

from __future__ import annotations

from collections.abc import Iterator  # noqa: TC003  (FastAPI reads the annotations at runtime)
from datetime import tzinfo
from typing import Annotated, cast

from fastapi import Depends, FastAPI, Request
from sqlalchemy import Connection, Engine

from hub.api.services import ApiServices, AsOfReader, HistoryReader, Publisher, RawReader
from hub.delivery.webhooks import SubscriptionStore
from hub.ingest.http_edge import Ingestor
from hub.ports import Clock, EventBus
from hub.translation.retry import HubDeadLetters
from projections.energy.figures import SiteFigures


class HubApi(FastAPI):
    """A FastAPI app that carries the services it was built with."""

    def __init__(self, services: ApiServices, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.services = services


def get_services(request: Request) -> ApiServices:
    return cast("HubApi", request.app).services


ServicesDep = Annotated[ApiServices, Depends(get_services)]
get_state = get_services  # the name before ApiServices; ApiServices has what ApiState had
StateDep = ServicesDep


def get_engine(services: ServicesDep) -> Engine:
    return services.engine


def get_conn(services: ServicesDep) -> Iterator[Connection]:
    """A read-model connection for one request (sync: FastAPI runs it in its threadpool)."""
    with services.engine.connect() as conn:
        yield conn


def get_bus(services: ServicesDep) -> EventBus:
    return services.bus


def get_ingestor(services: ServicesDep) -> Ingestor:
    return services.ingest


def get_raw_reader(services: ServicesDep) -> RawReader:
    return services.raw


def get_publisher(services: ServicesDep) -> Publisher:
    return services.publish


def get_as_of(services: ServicesDep) -> AsOfReader:
    return services.as_of


def get_history(services: ServicesDep) -> HistoryReader:
    return services.history


def get_dead_letters(services: ServicesDep) -> HubDeadLetters:
    return services.dead_letters


def get_subscriptions(services: ServicesDep) -> SubscriptionStore:
    return services.subscriptions


def get_zone(services: ServicesDep) -> tzinfo:
    return services.zone


def get_energy_site(services: ServicesDep) -> SiteFigures:
    """Areas, beds, bed-day census and names from the BMS mapping in force (empty without one)."""
    return services.energy_site()


def get_clock(services: ServicesDep) -> Clock:
    """The hub's clock ("now" for loans, SLAs, due dates); the route modules' get_clock is this one."""
    return services.clock


EngineDep = Annotated[Engine, Depends(get_engine)]
ConnDep = Annotated[Connection, Depends(get_conn)]
BusDep = Annotated[EventBus, Depends(get_bus)]
IngestorDep = Annotated[Ingestor, Depends(get_ingestor)]
RawReaderDep = Annotated[RawReader, Depends(get_raw_reader)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
AsOfDep = Annotated[AsOfReader, Depends(get_as_of)]
HistoryDep = Annotated[HistoryReader, Depends(get_history)]
DeadLettersDep = Annotated[HubDeadLetters, Depends(get_dead_letters)]
SubscriptionsDep = Annotated[SubscriptionStore, Depends(get_subscriptions)]
ZoneDep = Annotated[tzinfo, Depends(get_zone)]
ClockDep = Annotated[Clock, Depends(get_clock)]
EnergySiteDep = Annotated[SiteFigures, Depends(get_energy_site)]
