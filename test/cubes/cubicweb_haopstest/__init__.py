"""Test cube of the end-to-end tests of cubicweb-haops: it customises
monitor_db, provides a view that keeps a pool connection busy, and a hook that
keeps the row of a File locked during an edit."""
