"""What operators run: queue status, DLQ redrive, the resolve sweeper, test events, configuration tools."""
