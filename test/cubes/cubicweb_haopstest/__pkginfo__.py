"""Packaging information of the haopstest test cube."""

modname = "cubicweb_haopstest"
distname = "cubicweb-haopstest"
numversion = (0, 1, 0)
version = ".".join(str(num) for num in numversion)
license = "LGPL"
description = "test cube of cubicweb-haops"
__depends__ = {"cubicweb-haops": None}
