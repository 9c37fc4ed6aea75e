"""Hash the Files stored before the cube kept their content hash.

Versioned image URLs and ETags read ``data_hash``. cubicweb-file fills it in
only when its ``compute-hash`` option is on, so an instance that adopts the
cube may hold Files without it. Migration scripts call this once.
"""


def hash_unhashed_files(cnx):
    """Store the content hash of every File that has none; return how many were hashed."""
    # The schema lets no user write data_hash, so only a connection with
    # security off may set it.
    with cnx.security_enabled(read=False, write=False):
        eids = [eid for (eid,) in cnx.execute("Any X WHERE X is File, X data_hash NULL")]
        for eid in eids:
            entity = cnx.entity_from_eid(eid)
            entity.cw_set(data_hash=entity.compute_hash())
            # The bytes of one File at a time stay in memory.
            cnx.drop_entity_cache()
    return len(eids)
