"""Processing: the output airlock — a finished task's outputs checked, reviewed by two checkers, released.

Filled in by the airlock work (issue 11).
"""

from __future__ import annotations

AIRLOCK_COMMANDS: tuple = ()
AIRLOCK_FACTS: tuple = ()
