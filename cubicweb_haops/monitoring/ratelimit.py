"""Logging that repeats a message at most once per interval and counts the rest."""

import threading
import time


class RateLimitedLogger:
    """Log through *logger* at most once per *interval* seconds for each key."""

    def __init__(self, logger, interval=60.0, clock=time.monotonic):
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged = {}
        self._suppressed = {}

    def _should_log(self, key):
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False, 0
            self._last_logged[key] = now
            return True, self._suppressed.pop(key, 0)

    def log(self, level, key, message, *args, exc_info=None):
        """Log *message* unless *key* was logged less than an interval ago."""
        should_log, suppressed = self._should_log(key)
        if not should_log:
            return
        if suppressed:
            message += " (%d similar messages suppressed)"
            args += (suppressed,)
        self.logger.log(level, message, *args, exc_info=exc_info)
