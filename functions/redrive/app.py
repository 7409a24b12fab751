"""The Redrive function's entry point (template.yaml: CodeUri functions/redrive, Handler app.lambda_handler).

The handler lives in the layer, :mod:`pdrelay.handlers.redrive`: see there.
"""

from pdrelay.handlers.redrive import lambda_handler

__all__ = ["lambda_handler"]
