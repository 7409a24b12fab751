"""What happened to an alert: its timeline, read back from the functions' JSON log lines, then its
state now in the dedup table (``pdrelay trace KEY``).

Nothing is written for it on the way: the timeline is what the ingest, dispatch, redrive and sweep
functions already log (:mod:`pdrelay.observability`), each line tied to its alert by ``dedup_key``
(ingest's "alerts accepted" line lists its alerts, a redrive's result the keys it moved) and to
the request that brought it by ``request_id``. The lines come from a deployed stack's log groups
through one CloudWatch Logs Insights query (:func:`search_logs`), or from the local stack's log
file (:func:`read_log_files`). ``KEY`` is a dedup key, an alert identity (as the ingest answer shows
it) or a request id (:func:`assemble` says which it took it for).

What the logs cannot say they do not: SQS moving a message to the DLQ after its last receive
writes no line, so a failed attempt on the last receive (``max_receives``, the queue's
``maxReceiveCount``) is marked as the one after which SQS moves it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pdrelay.errors import ConfigError, UpstreamError
from pdrelay.timeutil import SYSTEM_CLOCK, Clock, parse_time

PAGE = 10_000  # rows a Logs Insights query returns at most
MAX_PAGES = 10
MAX_KEYS = 20  # dedup keys one trace follows (a request id may name a batch)
POLL_SECONDS = 1.0
QUERY_TIMEOUT_SECONDS = 120.0
FUNCTION_LOG_GROUPS = ("IngestLogGroup", "DispatchLogGroup", "RedriveLogGroup", "SweepLogGroup")
# A line's keys never shown: nothing pdrelay logs carries them, but a trace prints what it reads.
HIDDEN = re.compile(r"routing_key|service_key|token|secret|password|hmac|authorization|signature", re.I)
# Keys every line of an invocation carries: not the step's own fields.
CONTEXT_KEYS = ("level", "message", "timestamp", "function", "request_id", "route", "destination", "dedup_key")


# -- log lines -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogLine:
    at: datetime
    doc: dict[str, Any]
    source: str = ""  # the log group, or the file

    @property
    def message(self) -> str:
        return str(self.doc.get("message") or "")

    def dedup_keys(self) -> list[str]:
        """The dedup keys this line is about."""
        found: list[str] = []
        if isinstance(self.doc.get("dedup_key"), str):
            found.append(self.doc["dedup_key"])
        for entry in self.doc.get("alerts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("dedup_key"), str):
                found.append(entry["dedup_key"])
        listed = self.doc.get("dedup_keys")
        result = self.doc.get("result")
        if listed is None and isinstance(result, dict):
            listed = result.get("dedup_keys")
        found.extend(k for k in listed or [] if isinstance(k, str))
        return found


def parse_line(text: str, at: datetime | None = None, source: str = "") -> LogLine | None:
    """A pdrelay log line (a JSON object with a ``message``), or None for anything else (Lambda's
    START/END/REPORT lines, metrics documents). ``at``: CloudWatch's stamp; else the line's own."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        doc = json.loads(text[start:])
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return None
    moment = at or parse_time(doc.get("timestamp"))
    if moment is None:
        return None
    return LogLine(moment, doc, source)


def read_log_files(path: Path, since: datetime | None = None, containing: Iterable[str] = ()) -> list[LogLine]:
    """The lines of the local stack's log file and its rotated copies (``dev.log.2``, ``.1``,
    then ``dev.log``: oldest first), from ``since`` on; with ``containing``, those that contain
    one of these texts (as the Logs Insights query filters)."""
    texts = list(containing)
    files = [*sorted(path.parent.glob(path.name + ".*"), key=lambda p: -_suffix(p)), path]
    lines: list[LogLine] = []
    for file in files:
        if not file.is_file() or _suffix(file) < 0:
            continue
        with file.open(encoding="utf-8", errors="replace") as handle:
            for text in handle:
                if texts and not any(t in text for t in texts):
                    continue
                line = parse_line(text, source=file.name)
                if line is not None and (since is None or line.at >= since):
                    lines.append(line)
    return lines


def _suffix(path: Path) -> int:
    """0 for ``dev.log``, N for ``dev.log.N``, -1 for anything else beside it."""
    _, _, tail = path.name.rpartition(".log")
    if not tail:
        return 0
    return int(tail[1:]) if tail[1:].isdigit() else -1


# -- CloudWatch Logs Insights ---------------------------------------------------------------------
def needles(key: str) -> list[str]:
    """What a line about ``key`` contains: the key itself (a dedup key, a request id, or an identity
    inside the dedup key made from it), or the hash a long identity's dedup key holds instead."""
    return [key, hashlib.sha256(key.encode()).hexdigest()]


def insights_query(texts: Iterable[str], limit: int = PAGE) -> str:
    """One Logs Insights query for the lines containing any of ``texts``, oldest first."""
    quoted = [json.dumps(t, ensure_ascii=False) for t in dict.fromkeys(texts)]
    condition = " or ".join(f"@message like {q}" for q in quoted)
    return f"fields @timestamp, @message, @log | filter {condition} | sort @timestamp asc | limit {limit}"


def _stamp(value: str) -> datetime:
    """Logs Insights' ``@timestamp`` ("2026-12-07 05:12:01.123", UTC), or epoch milliseconds."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    return datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=UTC)


def run_query(
    logs: Any,
    groups: list[str],
    query: str,
    start: datetime,
    end: datetime,
    clock: Clock = SYSTEM_CLOCK,
    timeout: float = QUERY_TIMEOUT_SECONDS,
) -> list[dict[str, str]]:
    """Start a query and wait for its rows (``[{"@timestamp": ..., "@message": ...}]``)."""
    query_id = logs.start_query(
        logGroupNames=groups,
        startTime=int(start.timestamp()),
        endTime=int(end.timestamp()) + 1,
        queryString=query,
        limit=PAGE,
    )["queryId"]
    deadline = clock.monotonic() + timeout
    while True:
        answer = logs.get_query_results(queryId=query_id)
        status = answer.get("status")
        if status == "Complete":
            return [{f["field"]: f.get("value", "") for f in row} for row in answer.get("results", [])]
        if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
            raise UpstreamError(f"the Logs Insights query ended {status}")
        if clock.monotonic() >= deadline:
            logs.stop_query(queryId=query_id)
            raise UpstreamError(f"the Logs Insights query took longer than {timeout:.0f} s")
        clock.sleep(POLL_SECONDS)


def search_logs(
    logs: Any,
    groups: list[str],
    texts: Iterable[str],
    start: datetime,
    end: datetime,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[list[LogLine], bool]:
    """Every line containing one of ``texts`` between ``start`` and ``end``, oldest first, and
    whether that is all of them. A query returns at most :data:`PAGE` rows: when it is full, the
    next one starts at the second of its last row (rows seen twice are dropped by ``@ptr``)."""
    query = insights_query(texts)
    lines: list[LogLine] = []
    seen: set[str] = set()
    since = start
    for _page in range(MAX_PAGES):
        rows = run_query(logs, groups, query, since, end, clock)
        for row in rows:
            ptr = row.get("@ptr") or f"{row.get('@timestamp')}|{row.get('@log')}|{row.get('@message')}"
            if ptr in seen:
                continue
            seen.add(ptr)
            line = parse_line(row.get("@message", ""), _stamp(row.get("@timestamp", "0")), row.get("@log", ""))
            if line is not None:
                lines.append(line)
        if len(rows) < PAGE:
            return sorted(lines, key=lambda ln: ln.at), True
        last = _stamp(rows[-1].get("@timestamp", "0")).replace(microsecond=0)
        if last <= since:  # a whole page within one second: no way further
            break
        since = last
    return sorted(lines, key=lambda ln: ln.at), False


@dataclass(frozen=True)
class StackLogs:
    groups: list[str]
    max_receives: int | None


def stack_logs(stack: str, cloudformation: Any) -> StackLogs:
    """A deployed stack's functions' log groups (its resources) and its MaxReceiveCount."""
    groups: dict[str, str] = {}
    kwargs: dict[str, Any] = {"StackName": stack}
    while True:
        page = cloudformation.list_stack_resources(**kwargs)
        for resource in page.get("StackResourceSummaries", []):
            if resource["LogicalResourceId"] in FUNCTION_LOG_GROUPS:
                groups[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    if not groups:
        raise ConfigError(f"stack {stack} has none of the functions' log groups", list(FUNCTION_LOG_GROUPS))
    parameters = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Parameters", [])
    receives = next((p.get("ParameterValue") for p in parameters if p["ParameterKey"] == "MaxReceiveCount"), None)
    return StackLogs([groups[k] for k in FUNCTION_LOG_GROUPS if k in groups], int(receives) if receives else None)


# -- the timeline ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str  # accepted, sent, skipped, failed, deferred, dead-lettered, redriven, held, rolled-up, swept, ...
    text: str
    dedup_key: str | None = None
    route: str | None = None
    destination: str | None = None
    request_id: str | None = None
    function: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"at": _iso(self.at), "kind": self.kind, "text": self.text}
        for name in ("dedup_key", "route", "destination", "request_id"):
            if getattr(self, name):
                doc[name] = getattr(self, name)
        if self.function:
            doc["function"] = self.function
        if self.fields:
            doc["fields"] = self.fields
        return doc


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


SKIPPED = {
    "stale": "older than the last event applied (reordered, retried or late): dropped",
    "duplicate": "the event already applied",
    "unchanged": "a repeat with the same content: no call",
    "unknown": "an acknowledge for an alert pdrelay does not know",
    "in-flight": "another dispatcher is sending this alert",
    "after-trigger": "its trigger has not reached PagerDuty yet",
}
DEFERRED = {
    "paced": "the routing key's send rate",
    "throttled": "PagerDuty answered 429: the key is paused",
    "circuit-open": "PagerDuty keeps failing: the circuit breaker is open",
    "in-flight": "another dispatcher is sending this alert",
    "after-trigger": "its trigger has not reached PagerDuty yet",
}


def _answer(doc: dict[str, Any]) -> str:
    status = doc.get("status")
    said = f"PagerDuty {status}" if status else "no answer"
    if doc.get("call_ms") is not None:
        said += f" in {doc['call_ms']} ms"
    return said + (f": {doc['error']}" if doc.get("error") else "")


def _accepted(doc: dict[str, Any], wanted: set[str]) -> str:
    caller = doc.get("caller") or "?"
    where = f"route {doc.get('route') or '-'}"
    if isinstance(doc.get("alerts"), list):
        entries = [e for e in doc["alerts"] if isinstance(e, dict) and e.get("dedup_key") in wanted]
        actions = sorted({str(e.get("action")) for e in entries})
        targets = [
            str(e["destination"]) + (f" (rule {e['rule']})" if e.get("rule") else "")
            for e in entries
            if e.get("destination")
        ]
    else:  # "event accepted": one alert, its destinations
        actions = [str(doc["action"])] if doc.get("action") else []
        targets = [str(d) for d in doc.get("destinations") or [] if isinstance(d, str)]
        if doc.get("rules"):
            targets.append(f"rules {', '.join(map(str, doc['rules']))}")
    text = f"{'/'.join(actions) or 'event'} from {caller} ({doc.get('format') or '?'}), {where}"
    if targets:
        text += " → " + ", ".join(dict.fromkeys(targets))
    if doc.get("notes"):
        text += "; notes: " + "; ".join(map(str, doc["notes"]))
    return text


def _step(line: LogLine, wanted: set[str], max_receives: int | None) -> Step | None:
    doc, message = line.doc, line.message
    kind, text = "note", message
    if message in ("alerts accepted", "event accepted", "test event accepted"):
        kind, text = "accepted", _accepted(doc, wanted)
    elif message == "delivered":
        kind = "sent"
        action, reason = doc.get("action"), doc.get("reason")
        text = f"{action}{f' ({reason})' if reason and reason != action else ''}: {_answer(doc)}"
        if doc.get("latency_ms") is not None:
            text += f"; {doc['latency_ms']} ms after receipt"
    elif message == "skipped":
        kind = "skipped"
        reason = str(doc.get("reason"))
        text = f"{doc.get('action')}: nothing sent, {reason}" + (f" ({SKIPPED[reason]})" if reason in SKIPPED else "")
    elif message == "deferred":
        kind = "deferred"
        reason = str(doc.get("reason"))
        text = f"put back for {doc.get('delay_s')} s: {reason}" + (
            f" ({DEFERRED[reason]})" if reason in DEFERRED else ""
        )
        if "status" in doc:
            text += f", after {_answer(doc)}"
    elif message == "delivery failed, will retry":
        kind = "failed"
        text = f"{doc.get('action') or 'event'} attempt {doc.get('attempt')}: {_answer(doc)}"
        receive = doc.get("receive_count")
        if max_receives and isinstance(receive, int) and receive >= max_receives:
            text += f"; its last receive ({max_receives}): SQS moves it to the DLQ"
        else:
            text += f"; retried in {doc.get('retry_in_s')} s"
    elif message == "sent to the DLQ":
        kind = "dead-lettered"
        text = f"in the DLQ: {doc.get('reason')}" + (f" (HTTP {doc['status']})" if doc.get("status") else "")
    elif message == "held by a maintenance window":
        kind, text = "held", f"held by maintenance window {doc.get('window')}"
    elif message.startswith("update suppressed"):
        kind, text = "suppressed", f"update not sent: the route's min_resend_seconds ({doc.get('suppressed')} so far)"
    elif message == "recorded without a call":
        kind, text = "skipped", f"recorded without a call: {doc.get('reason')}"
    elif message in ("rolled up", "left the roll-up"):
        kind = "rolled-up"
        text = f"{message}: {doc.get('rollup')} ({doc.get('members')} alerts)"
        if doc.get("sent"):
            text += f", roll-up incident sent a {doc['sent']}"
    elif message.startswith("resolved before its trigger reached PagerDuty"):
        kind, text = "skipped", f"resolved before its trigger reached PagerDuty: {doc.get('outcome')}, no incident"
    elif message.startswith("sweeper: "):
        kind = "swept"
        text = message.removeprefix("sweeper: ") + (f": {doc['error']}" if doc.get("error") else "")
    elif message.startswith("reconcile: "):
        kind = "reconciled"
        text = message.removeprefix("reconcile: ")
        text += "".join(f"; {name} {doc[name]}" for name in ("kind", "incident", "error") if doc.get(name))
    elif message.startswith("maintenance over"):
        kind, text = "released", f"{doc.get('window')} over: back on the queue"
    elif message == "redrive done":
        kind = "redriven"
        text = "moved back from the DLQ to the queue (RedriveFunction)"
    elif message.startswith("PagerDuty throttled"):
        text = f"PagerDuty throttled the routing key: paused {doc.get('pause_s')} s"
    elif message == "execution environment started":
        return None
    fields = {
        k: v for k, v in doc.items() if k not in CONTEXT_KEYS and k not in ("alerts", "result") and not HIDDEN.search(k)
    }
    keys = [k for k in line.dedup_keys() if k in wanted]
    return Step(
        at=line.at,
        kind=kind,
        text=text,
        dedup_key=keys[0] if len(keys) == 1 else None,
        route=doc.get("route"),
        destination=doc.get("destination"),
        request_id=doc.get("request_id"),
        function=str(doc.get("function") or line.source.rsplit("/", 1)[-1]),
        fields=fields,
    )


def resolve_key(key: str, lines: list[LogLine]) -> tuple[list[str], str]:
    """The dedup keys ``key`` names, and what it was taken for: a dedup key, a request id (the
    alerts that request brought) or an alert identity (its dedup keys); none: not in the lines."""
    if any(key in line.dedup_keys() for line in lines):
        return [key], "dedup key"
    by_request = [k for line in lines if line.doc.get("request_id") == key for k in line.dedup_keys()]
    if by_request:
        return list(dict.fromkeys(by_request))[:MAX_KEYS], "request id"
    hashed = hashlib.sha256(key.encode()).hexdigest()
    found: list[str] = []
    for line in lines:
        for k in line.dedup_keys():
            if k.endswith(":" + key) or k.endswith(":sha256:" + hashed):
                found.append(k)
        for entry in line.doc.get("alerts") or []:
            if isinstance(entry, dict) and entry.get("identity") == key and entry.get("dedup_key"):
                found.append(str(entry["dedup_key"]))
    if found:
        return list(dict.fromkeys(found))[:MAX_KEYS], "identity"
    return [], "unknown"


def timeline(dedup_keys: list[str], lines: list[LogLine], max_receives: int | None = None) -> list[Step]:
    """The steps of these alerts, oldest first. A message's first line after a redrive (its lines
    carry ``redriven``) is preceded by a "redriven" step, unless the redrive said so itself."""
    wanted = set(dedup_keys)
    steps: list[Step] = []
    redriven: dict[tuple[str, str], int] = {}  # (dedup key, destination) -> redrives seen
    for line in sorted(lines, key=lambda ln: ln.at):
        if not wanted & set(line.dedup_keys()):
            continue
        step = _step(line, wanted, max_receives)
        if step is None:
            continue
        count = line.doc.get("redriven")
        where = (str(line.doc.get("dedup_key")), str(line.doc.get("destination")))
        if isinstance(count, int) and count > redriven.get(where, 0):
            redriven[where] = count
            said = any(s.kind == "redriven" and step.dedup_key in (None, s.dedup_key) for s in steps[-5:])
            if not said:
                steps.append(
                    Step(
                        at=line.at,
                        kind="redriven",
                        text=f"back from the DLQ (redrive {count}): received again",
                        dedup_key=step.dedup_key,
                        route=step.route,
                        destination=step.destination,
                        request_id=step.request_id,
                        function=step.function,
                    )
                )
        steps.append(step)
    return steps


@dataclass
class Trace:
    key: str
    taken_as: str  # dedup key | request id | identity | unknown
    dedup_keys: list[str]
    steps: list[Step]
    states: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "taken_as": self.taken_as,
            "dedup_keys": self.dedup_keys,
            "source": self.source,
            "complete": self.complete,
            "timeline": [s.as_dict() for s in self.steps],
            "state": self.states,
            "notes": self.notes,
        }


def assemble(key: str, lines: list[LogLine], max_receives: int | None = None) -> Trace:
    keys, taken_as = resolve_key(key, lines)
    return Trace(key, taken_as, keys, timeline(keys, lines, max_receives))


def trace_from_logs(
    key: str,
    fetch: Callable[[list[str]], tuple[list[LogLine], bool]],
    max_receives: int | None = None,
) -> Trace:
    """Fetch the lines that mention ``key``; when it names other dedup keys (a request id, an
    identity), fetch theirs too (their later events came in other requests)."""
    lines, complete = fetch(needles(key))
    keys, taken_as = resolve_key(key, lines)
    more = [k for k in keys if k != key]
    if more:
        extra, complete_extra = fetch(more)
        seen = {(ln.at, json.dumps(ln.doc, sort_keys=True, default=str)) for ln in lines}
        lines += [ln for ln in extra if (ln.at, json.dumps(ln.doc, sort_keys=True, default=str)) not in seen]
        complete = complete and complete_extra
    result = Trace(key, taken_as, keys, timeline(keys, lines, max_receives), complete=complete)
    if not complete:
        result.notes.append("more lines than one search returns: the timeline may miss some")
    return result


def since_option(text: str, now: datetime) -> datetime:
    """``--since``: ``90s``, ``30m``, ``24h``, ``7d``, or an ISO 8601 time."""
    found = re.fullmatch(r"(\d+)\s*([smhd])", text.strip())
    if found:
        seconds = int(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
        return now - timedelta(seconds=seconds)
    moment = parse_time(text)
    if moment is None:
        raise ConfigError(f"--since {text!r}: a duration like 30m, 24h, 7d, or an ISO 8601 time")
    return moment
