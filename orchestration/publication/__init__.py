"""Publication: the analysts' read-only warehouse (publish.py), the bulletin (bulletin.py) and
the one way pages are rendered (pages.py, templates/)."""
