"""Packaging metadata of cubicweb-haops, the only place that defines its version."""

modname = "cubicweb_haops"
distname = "cubicweb-haops"

numversion = (0, 3, 0)
version = ".".join(str(num) for num in numversion)

license = "LGPL"
author = "cubicweb-haops developers"
author_email = "haops@example.org"
description = (
    "high-availability operations for CubicWeb sites: monitoring views for Nagios"
    " and images that change URL when replaced"
)
web = "https://example.org/cubicweb-haops"

# CubicWeb reads __depends__ for the cubes this one needs: "web" is the cube
# that cubicweb-web provides, with /view?vid=, controllers and forms; "file"
# (cubicweb-file) provides the File entities that hold images.
__depends__ = {
    "cubicweb": ">= 5.0.0, < 6.0.0",
    "cubicweb-web": ">= 1.0.0, < 2.0.0",
    "cubicweb-file": ">= 4.0.0, < 5.0.0",
    # For the check_haops Nagios plugin.
    "nagiosplugin": ">= 1.3",
}
__recommends__ = {}

classifiers = [
    "Environment :: Web Environment",
    "Framework :: CubicWeb",
    "Framework :: Pyramid",
    "Programming Language :: Python",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Topic :: System :: Monitoring",
]
