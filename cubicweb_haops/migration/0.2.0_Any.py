# Upgrade to 0.2.0: images replaced through the edit form need cubicweb-file
# and the FileReplacement records behind the redirects from old URLs.

if "file" not in config.cubes():  # noqa: F821 (migration script globals)
    add_cube("file")  # noqa: F821

add_entity_type("FileReplacement")  # noqa: F821
