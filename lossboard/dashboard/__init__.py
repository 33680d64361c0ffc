"""The ``lossboard`` tab of TensorBoard: configurations over seeds, with bands, and their table.

Installing lossboard registers the plugin (setup.cfg's ``tensorboard_plugins`` entry point);
``tensorboard --logdir ROOT`` then shows the tab when ROOT holds lossboard's (Keras') layout or
runs with hparams. Only ``plugin.py`` imports TensorBoard; the rest reads with lossboard's
TensorFlow-free reader (``lossboard.reader.cache``: a reload reads only the files that changed).

- ``plugin.py``: ``LossboardPlugin``, TensorBoard's side: routes, ``is_active``, static files.
- ``payload.py``: ``Dashboard``, the routes' JSON: each configuration's mean curve and band
  (std, min-max or the 95% interval), its runs, and the table of ``lossboard compare --over``.
- ``query.py``: the query strings, checked (``QueryError``: HTTP 400 with a message).
- ``static/index.js``, ``static/chart.js``: the frontend, an ES module whose ``render()``
  TensorBoard calls; plain JavaScript and SVG, no library, no network.

Examples:
    >>> from lossboard.dashboard.payload import Dashboard
    >>> Dashboard(".").info()["runs"]
    0
"""
