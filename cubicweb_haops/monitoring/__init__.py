"""Checks behind the monitoring views: each module measures one thing and
judges it into a :class:`~cubicweb_haops.monitoring.status.CheckResult`.

Nothing here takes a connection from the instance's connection pool, so the
checks keep working when the pool is exhausted.
"""
