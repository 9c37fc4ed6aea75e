"""Benchmark cube of cubicweb-haops, used by ``bench/monitoring.py`` only.

It adds a pyramid route that returns a constant text, the floor of any
request to the process, and the monitoring views served through CubicWeb's
usual web path for comparison. Never install it on a site.
"""


def includeme(config):
    """Pyramid entry point, included by CubicWeb for every cube of the instance."""
    config.include("cubicweb_haopsbench.floor")
