"""Where `pdrelay dev` writes down what the other commands need to talk to it.

``dev.json`` (the relay's and the emulators' URLs, the bearer token, the queue URLs and the table
name, where its log file is) and ``dev.log`` (the functions' JSON log lines, as they also go to
standard error, which ``pdrelay trace`` reads; rotated at 10 MB, ``dev.log.1`` and ``dev.log.2``
the older ones), in the state folder: ``$PDRELAY_STATE_DIR`` when set (``pdrelay dev --state-dir``
sets it for itself), else ``$XDG_STATE_HOME/pdrelay``, else ``~/.local/state/pdrelay``. Never the
working folder: `pdrelay dev` runs from anywhere and writes nothing where it runs. The queues and
the table themselves live in memory, in the AWS emulator, and are gone when it stops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

STATE_DIR_ENV = "PDRELAY_STATE_DIR"
DEV_STATE_NAME = "dev.json"
DEV_LOG_NAME = "dev.log"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV]).expanduser()
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative value is to be ignored
        return Path(xdg) / "pdrelay"
    return Path.home() / ".local" / "state" / "pdrelay"


def dev_state_file(environ: Mapping[str, str] | None = None) -> Path:
    """The running `pdrelay dev`'s ``dev.json``."""
    return state_dir(environ) / DEV_STATE_NAME


def dev_log_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where `pdrelay dev` writes its log lines (``pdrelay trace`` reads them)."""
    return state_dir(environ) / DEV_LOG_NAME
