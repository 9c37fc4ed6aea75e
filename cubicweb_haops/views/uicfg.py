"""Keep the replacement records out of the pages and forms of a File."""

from cubicweb_web.views import uicfg

RELATION = ("FileReplacement", "replacement_file", "File")

uicfg.primaryview_section.tag_object_of(RELATION, "hidden")
uicfg.autoform_section.tag_object_of(RELATION, "main", "hidden")
uicfg.actionbox_appearsin_addmenu.tag_object_of(RELATION, False)
