"""Packaging information of the haopsbench benchmark cube."""

modname = "cubicweb_haopsbench"
distname = "cubicweb-haopsbench"
numversion = (0, 1, 0)
version = ".".join(str(num) for num in numversion)
license = "LGPL"
description = "benchmark cube of cubicweb-haops"
__depends__ = {"cubicweb-haops": None}
