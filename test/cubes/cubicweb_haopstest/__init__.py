"""Test cube: customises monitor_db and provides a view that holds a pool
connection, for the end-to-end tests of cubicweb-haops."""
