"""The Sweep function's entry point (template.yaml: CodeUri functions/sweep, Handler app.lambda_handler).

The handler lives in the layer, :mod:`pdrelay.handlers.sweep`: see there.
"""

from pdrelay.handlers.sweep import lambda_handler

__all__ = ["lambda_handler"]
