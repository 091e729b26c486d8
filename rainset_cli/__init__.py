"""rainset's command line: thin click commands over the :mod:`rainset` library."""
