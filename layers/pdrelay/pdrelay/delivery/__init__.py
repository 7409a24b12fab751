"""Queue to PagerDuty: the dispatcher, the dedup decisions, pacing and the breaker, the Events API client."""
