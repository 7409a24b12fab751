"""The Lambda handlers: adapters from each function's event to the domain, nothing more.

Each function's ``functions/<name>/app.py`` (the template's CodeUri) re-exports its
``lambda_handler`` from here, so the handlers ship in the layer and in the package: the local stack
(``pdrelay dev``) runs them from an installed package as well as from a checkout.
"""
