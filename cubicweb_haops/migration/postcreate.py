# Run when the cube is added to an instance, or the instance is created.

from cubicweb_haops.backfill import hash_unhashed_files

hash_unhashed_files(cnx)  # noqa: F821 (migration script globals)
commit()  # noqa: F821
