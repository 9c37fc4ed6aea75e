# Upgrade to 0.2.0: images replaced through the edit form need cubicweb-file
# and the FileReplacement records behind the redirects from old URLs, and
# versioned image URLs need the content hash of every File.

from cubicweb_haops.backfill import hash_unhashed_files

if "file" not in config.cubes():  # noqa: F821 (migration script globals)
    add_cube("file")  # noqa: F821

add_entity_type("FileReplacement")  # noqa: F821

hash_unhashed_files(cnx)  # noqa: F821
commit()  # noqa: F821
