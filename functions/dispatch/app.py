"""The Dispatch function's entry point (template.yaml: CodeUri functions/dispatch, Handler app.lambda_handler).

The handler lives in the layer, :mod:`pdrelay.handlers.dispatch`: see there.
"""

from pdrelay.handlers.dispatch import lambda_handler

__all__ = ["lambda_handler"]
