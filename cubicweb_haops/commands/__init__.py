"""The ``cubicweb-ctl`` commands of the cube, registered by ``ccplugin``."""
