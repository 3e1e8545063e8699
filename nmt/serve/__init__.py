"""`nmt serve`: an HTTP API and a web page over a translation function.

The server knows nothing of models or text processing: it is handed an
:class:`~nmt.serve.app.Engine` (a translate function and facts about the
model) by ``nmt.commands.serve``, checks requests against the limits of a
:class:`~nmt.config.ServeConfig`, and decodes requests that arrive together
in one batch (:mod:`nmt.serve.batcher`).
"""
