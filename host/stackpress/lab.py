"""What `serve` gives the lab beyond its logs: for each fixture it serves, a publisher on
the MQTT broker (publisher.py) and a notifier (notify.py), hung on its logger."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .notify import Notifier, Rules

if TYPE_CHECKING:
    from stackpress.logger import FixtureLogger, Observer
    from stackpress.mqtt import Broker


def observers(
    broker: Broker | None, control: bool, rules: Rules, meta: dict[str, Any]
) -> Callable[[FixtureLogger], list[Observer]] | None:
    """A factory for logger.record(observe=...): None when serve has nothing to add."""
    if broker is None and not rules.active:
        return None

    def make(lg: FixtureLogger) -> list[Observer]:
        fid = str(lg.fixture_id)  # known: the logger opened its fixture before it asks
        out: list[Observer] = []
        pub = None
        if broker is not None:
            from .publisher import FixturePublisher

            pub = FixturePublisher(broker, fid, meta, control, lg.command_as, lg.mark)
        if rules.active:  # first: it closes first, and what it still tells goes out through pub
            out.append(Notifier(rules, fid, meta, lg.mark, pub.notification if pub else None))
        if pub is not None:
            out.append(pub)
        return out

    return make
