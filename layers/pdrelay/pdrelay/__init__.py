"""pdrelay: a relay from monitors to PagerDuty's Events API v2.

The public surface is small: formats turn monitor payloads into ``Alert`` objects,
``ingest`` and ``dispatch`` are the domain behind the two Lambda handlers, and
``local`` runs the whole pipeline on one machine.
"""

__version__ = "0.1.0"
