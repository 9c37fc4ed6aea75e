"""Hooks of the test cube."""

import time

from cubicweb.predicates import is_instance
from cubicweb.server import hook

# An edit that sets this title on a File pauses after the update, inside its
# transaction, so the File's row stays locked while a concurrent edit starts.
HOLD_TITLE = "hold-replacement"
HOLD_SECONDS = 2


class HoldReplacementHook(hook.Hook):
    """Sleep HOLD_SECONDS after an update that sets a File's title to HOLD_TITLE."""

    __regid__ = "haopstest_hold_replacement"
    __select__ = hook.Hook.__select__ & is_instance("File")
    events = ("after_update_entity",)

    def __call__(self):
        if self.entity.cw_edited.get("title") == HOLD_TITLE:
            time.sleep(HOLD_SECONDS)
