"""On a schedule: re-send resolves the dedup table shows as never confirmed delivered, put
alerts held by a maintenance window back on the queue when the window is over, page routes
whose heartbeat has gone silent (:mod:`pdrelay.policy.heartbeats`), and, when a PagerDuty API key
is configured, reconcile with PagerDuty every few minutes (:mod:`pdrelay.ops.reconcile`)."""

from __future__ import annotations

from typing import Any

from pdrelay.aws import at_init
from pdrelay.config import config_reader
from pdrelay.observability import invocation, logger
from pdrelay.ops import resources
from pdrelay.settings import get_settings

QUIET = ("heartbeats_checked", "heartbeats_silent")


@invocation()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    result = resources.run_sweep(
        resources.from_environment(),
        settings.events_url,
        settings.sweep_after_seconds,
        settings.record_ttl_days,
        settings.connect_timeout_seconds,
        settings.read_timeout_seconds,
        config=config_reader(settings),
        reconcile=resources.ReconcileSchedule(
            settings.reconcile_every_minutes,
            settings.reconcile_api_key_secret,
            settings.pagerduty_api_url,
            resources.read_secret_string,
        )
        if settings.reconcile_every_minutes and settings.reconcile_api_key_secret
        else None,
    )
    # Every minute: say something only when there was something to do (not for heartbeats only checked).
    done = any(v for k, v in result.items() if k not in QUIET)
    (logger.info if done else logger.debug)("sweep done", extra=result)
    return result


def _prepare() -> None:
    """INIT: the modules a run imports, the process's clients and the configuration, so the first
    run (a minute after a deploy, and after every new execution environment) costs what the others do."""
    import pdrelay.ops.sweeper  # noqa: F401 - and through it the policy modules a run uses

    here = resources.from_environment()
    here.client("dynamodb")
    here.client("sqs")
    config_reader(get_settings())()


at_init(_prepare)
