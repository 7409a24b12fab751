"""A small client of PagerDuty's REST API v2: what ``pdrelay reconcile`` reads (and nothing it writes).

- Base URL ``https://api.pagerduty.com`` (the local emulator's: ``<emulator>/rest``); every request
  carries ``Authorization: Token token=<key>`` and ``Accept: application/vnd.pagerduty+json;version=2``.
  A read-only account key is enough.
- Lists use classic paging: ``limit`` (at most 100), ``offset``; each answer says ``more``. PagerDuty
  serves at most 10000 records of one list (``offset + limit``): a longer list is an error here,
  never silently cut.
- ``GET /services?include[]=integrations``: each service with its integrations; an Events API v2
  integration (``events_api_v2_inbound_integration``) carries its ``integration_key``, the routing
  key pdrelay sends with.
- ``GET /incidents`` with ``service_ids[]``, ``statuses[]``, ``incident_key`` and ``date_range=all``
  (without it PagerDuty only looks at a recent range); ``incident_key`` is the dedup key.

Errors are :class:`pdrelay.errors.RestApiError` with the HTTP status (0 when there was no answer).
The key never appears in a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from pdrelay.errors import RestApiError

DEFAULT_API_URL = "https://api.pagerduty.com"
PAGE_LIMIT = 100
MAX_RECORDS = 10000
EVENTS_V2_INTEGRATION = "events_api_v2_inbound_integration"
OPEN_STATUSES = ("triggered", "acknowledged")


@dataclass(frozen=True)
class Incident:
    """What reconcile needs of a PagerDuty incident."""

    id: str
    number: int
    status: str  # triggered | acknowledged | resolved
    incident_key: str  # the dedup key of the event that opened it ("" when it has none)
    service_id: str
    title: str
    html_url: str
    created_at: str

    @classmethod
    def from_api(cls, doc: dict[str, Any]) -> Incident:
        return cls(
            id=str(doc.get("id") or ""),
            number=int(doc.get("incident_number") or 0),
            status=str(doc.get("status") or ""),
            incident_key=str(doc.get("incident_key") or ""),
            service_id=str((doc.get("service") or {}).get("id") or ""),
            title=str(doc.get("title") or doc.get("summary") or ""),
            html_url=str(doc.get("html_url") or ""),
            created_at=str(doc.get("created_at") or ""),
        )


class RestClient:
    """PagerDuty's REST API v2 with one key; ``session`` may be passed in (tests, pooling)."""

    def __init__(
        self, api_key: str, base_url: str = DEFAULT_API_URL, *, timeout: float = 10.0, session: Any = None
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._session = session or requests.Session()
        self._headers = {
            "Authorization": f"Token token={api_key}",
            "Accept": "application/vnd.pagerduty+json;version=2",
        }
        self.requests = 0  # how many calls this client made (the report says what a run cost)

    def _get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        self.requests += 1
        try:
            answer = self._session.get(self._base + path, params=params, headers=self._headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise RestApiError(f"PagerDuty's REST API did not answer GET {path}: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise RestApiError(
                f"PagerDuty's REST API answered GET {path} {answer.status_code}: {_why(answer)}", answer.status_code
            )
        try:
            doc = answer.json()
        except ValueError as exc:
            raise RestApiError(f"PagerDuty's REST API answered GET {path} with no JSON", answer.status_code) from exc
        if not isinstance(doc, dict):
            raise RestApiError(f"PagerDuty's REST API answered GET {path} with no object", answer.status_code)
        return doc

    def pages(self, path: str, name: str, params: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """Every ``name`` item of a classic-paged list, page after page while ``more`` says so."""
        offset = 0
        while True:
            if offset + PAGE_LIMIT > MAX_RECORDS:
                raise RestApiError(f"GET {path}: more than {MAX_RECORDS} records; PagerDuty serves no more of one list")
            doc = self._get(path, [*params, ("limit", str(PAGE_LIMIT)), ("offset", str(offset))])
            items = doc.get(name)
            if not isinstance(items, list):
                raise RestApiError(f"GET {path}: the answer has no '{name}' list")
            yield from (i for i in items if isinstance(i, dict))
            if not doc.get("more") or not items:
                return
            offset += len(items)

    def services_by_integration_key(self) -> dict[str, str]:
        """Routing key → service id, for every Events API v2 integration the key can see."""
        found: dict[str, str] = {}
        for service in self.pages("/services", "services", [("include[]", "integrations")]):
            for integration in service.get("integrations") or []:
                if not isinstance(integration, dict) or integration.get("type") != EVENTS_V2_INTEGRATION:
                    continue
                key = integration.get("integration_key")
                if isinstance(key, str) and key:
                    found[key] = str(service.get("id") or "")
        return found

    def incidents(
        self, service_ids: list[str], statuses: tuple[str, ...] = OPEN_STATUSES, incident_key: str | None = None
    ) -> list[Incident]:
        """The incidents of these services with these statuses (of any age), optionally one key's."""
        params = [("date_range", "all")]
        params += [("service_ids[]", s) for s in service_ids]
        params += [("statuses[]", s) for s in statuses]
        if incident_key is not None:
            params.append(("incident_key", incident_key))
        return [Incident.from_api(i) for i in self.pages("/incidents", "incidents", params)]

    def alert_statuses(self, incident_id: str, alert_key: str) -> list[str]:
        """The statuses of the incident's alerts with this key (``GET /incidents/{id}/alerts``): an
        incident stays open while any of its alerts is, also after the alert it opened with resolved."""
        alerts = self.pages(f"/incidents/{quote(incident_id, safe='')}/alerts", "alerts", [])
        return [str(a.get("status") or "") for a in alerts if a.get("alert_key") == alert_key]


def _why(answer: requests.Response) -> str:
    """PagerDuty's error message (its documented ``{"error": {"message", "code", "errors"}}``)."""
    try:
        error = answer.json().get("error") or {}
        detail = "; ".join(str(e) for e in error.get("errors") or [])
        return str(error.get("message") or answer.reason) + (f" ({detail})" if detail else "")
    except (ValueError, AttributeError):
        return str(answer.reason or "no reason given")
