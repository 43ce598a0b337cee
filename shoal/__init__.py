"""shoal: a cluster manager for small clusters.

Packages, from the bottom up: ``model`` (pure wire data), ``client`` (the API client),
``agent`` (one per machine), ``control`` (the server), ``cli`` (for people), ``sandbox``
(a local cluster in namespaces). ``entry`` assembles the one ``shoal`` command.
"""

__version__ = "0.2.0"  # the one place the version is stated (pyproject reads it)
