"""From alerts to queue messages, one per alert and destination as the route's rules say, scrubbed
of credentials, with the route's and rule's event templates rendered; and onto the queue, counted as accepted."""

from __future__ import annotations

from dataclasses import dataclass, field

from pdrelay.config import RelayConfig
from pdrelay.ingest import scrub
from pdrelay.ingest.enqueue import enqueue
from pdrelay.ingest.request import Deps, IncomingRequest
from pdrelay.models import SUMMARY_LIMIT, Alert, QueueMessage, deterministic_dedup_key, make_message, truncate
from pdrelay.observability import ALERTS_ACCEPTED, count, logger
from pdrelay.policy import rules, templates
from pdrelay.policy.routing import Destination


def scrubbed(alert: Alert) -> Alert:
    """The alert without values that look like credentials (custom_details and summary)."""
    details, found = scrub.scrub_details(alert.custom_details)
    summary, in_summary = scrub.scrub_text(alert.summary) if alert.summary else (alert.summary, 0)
    if not found and not in_summary:
        return alert
    logger.info("credentials scrubbed from an alert", extra={"values": found + in_summary})
    return alert.model_copy(
        update={"custom_details": details, "summary": truncate(summary, SUMMARY_LIMIT) if summary else summary}
    )


@dataclass
class Fanned:
    messages: list[QueueMessage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fan_out(
    alerts: list[Alert],
    destination: Destination,
    config: RelayConfig,
    request: IncomingRequest,
    probe: str | None = None,
) -> Fanned:
    """One queue message per alert and destination.

    A trigger goes where the route's rules send it. A resolve or acknowledge goes to every
    destination of the route, so it reaches every incident that was opened whatever the rules
    said then; destinations that never opened one answer ``unknown`` at the dispatcher, which
    costs no PagerDuty call. A request that named one routing key goes to that key alone.
    """
    out = Fanned()
    route = config.routes.get(destination.route or "")

    def add(alert: Alert, routing_key: str, name: str | None, rule: str | None) -> None:
        alert = scrubbed(alert)  # templates render from the scrubbed alert: no credential reaches a field
        if route is not None:
            alert = templates.apply(alert, route.templates_for(rule), route=destination.route, rule=rule)
        out.messages.append(
            make_message(
                alert,
                route=destination.route,
                routing_key=routing_key,
                received_at=request.received_at,
                request_id=request.request_id,
                destination=name,
                rule=rule,
                probe=probe,
            )
        )

    for alert in alerts:
        if route is None or not destination.by_name:
            name = next((n for n, k in route.targets.items() if k == destination.routing_key), None) if route else None
            add(alert, destination.routing_key, name, None)
            continue
        targets = route.targets
        plan = rules.plan(route.rules, route.rules_match, route.defaults, alert)
        for target in plan.targets:
            add(target.alert, targets[target.destination], target.destination, target.rule)
        if alert.action == "trigger":
            stopped = sorted({d for d, _ in plan.not_paged} - {t.destination for t in plan.targets})
            if stopped:
                by = ", ".join(sorted({r for _, r in plan.not_paged}))
                out.notes.append(f"{alert.identity}: not paged on {', '.join(stopped)} (rule {by}: page: false)")
        else:
            planned = {t.destination for t in plan.targets}
            for name, routing_key in targets.items():
                if name not in planned:
                    add(alert, routing_key, name, None)
    return out


def logged(message: QueueMessage, several: bool) -> dict[str, str]:
    """What the "alerts accepted" line says of one queued message (what ``pdrelay trace`` reads):
    its dedup key and action; its destination and rule when the route has several or rules; its
    identity only when the dedup key does not spell it (a sender's own key). Log bytes are priced."""
    entry = {"dedup_key": message.dedup_key, "action": message.alert.action}
    if several:
        entry["destination"] = message.destination or "-"
        if message.rule:
            entry["rule"] = message.rule
    if message.dedup_key != deterministic_dedup_key(message.alert.format, message.alert.identity):
        entry["identity"] = message.alert.identity
    return entry


def enqueue_alerts(messages: list[QueueMessage], deps: Deps) -> None:
    """The messages on the alert queue (all or an EnqueueError), each counted as accepted."""
    if messages:
        enqueue(messages, deps.sqs, deps.settings.queue_url)
    for message in messages:
        count(ALERTS_ACCEPTED, Format=message.alert.format, Action=message.alert.action)
