"""The Ingest function's entry point (template.yaml: CodeUri functions/ingest, Handler app.lambda_handler).

The handler lives in the layer, :mod:`pdrelay.handlers.ingest`: see there.
"""

from pdrelay.handlers.ingest import lambda_handler

__all__ = ["lambda_handler"]
