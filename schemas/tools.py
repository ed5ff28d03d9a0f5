"""Processing: tools and workflows (GA4GH TRS 2) registered, versions approved for execution, withdrawn.

Filled in by the TRS work (issue 11): commands ``tool.register_requested``, ``tool.approve_requested``,
``tool.withdraw_requested``; facts ``tool.registered``, ``tool.version_added``, ``tool.version_approved``,
``tool.version_withdrawn``, decided by the tool registry (``consumers/tool_registry.py``).
"""

from __future__ import annotations

TOOL_COMMANDS: tuple = ()
TOOL_FACTS: tuple = ()
