"""The Satu Data portal: the forum's people in a browser (``satudata serve``)."""
