"""The four monitoring views under ``naive_`` regids, served the usual way.

Each class renders what its parent renders, but ``connectionless = False``
keeps it off the monitoring route. CubicWeb's usual web path serves it, and
takes a session and a pool connection for the whole request, as it would for
a monitoring view written without cubicweb-haops's route.
"""

from cubicweb_haops.views.monitoring import (
    DatabaseMonitorView,
    HostnameMonitorView,
    PoolMonitorView,
    VersionMonitorView,
)


class NaiveHostnameMonitorView(HostnameMonitorView):
    __regid__ = "naive_monitor_hostname"
    connectionless = False


class NaivePoolMonitorView(PoolMonitorView):
    __regid__ = "naive_monitor_pool"
    connectionless = False


class NaiveDatabaseMonitorView(DatabaseMonitorView):
    __regid__ = "naive_monitor_db"
    connectionless = False


class NaiveVersionMonitorView(VersionMonitorView):
    __regid__ = "naive_monitor_version"
    connectionless = False
