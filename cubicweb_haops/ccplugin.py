"""``cubicweb-ctl`` commands of cubicweb-haops, loaded by cubicweb-ctl itself."""

from cubicweb_haops.commands import config, split, start

config.register()
split.register()
start.register()
