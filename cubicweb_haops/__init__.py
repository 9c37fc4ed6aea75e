"""cubicweb-haops: run a CubicWeb site well behind a load balancer and Squid.

Provides monitoring views that Nagios polls at ``/view?vid=monitor_pool``,
``monitor_db``, ``monitor_version`` and ``monitor_hostname``; an edit
controller that gives a replaced image a new URL; and image URLs that carry
a content fingerprint, served with headers that Squid and browsers can trust.
"""


def includeme(config):
    """Pyramid entry point, included by CubicWeb for every cube of the instance."""
    config.include("cubicweb_haops.route")
    config.include("cubicweb_haops.imageroute")
    config.include("cubicweb_haops.personalcache")
