"""`hea-rag serve`: a web page and a JSON API over the same index and model as the CLI.

settings (options and defaults), run (start and stop), app (routes), service (the library calls
on their threads), jobs (the model's bounded fair queue), live_index (the live generation per
thread), uploads (checked, size-limited files), guard (token, Host, Origin), errors (statuses).
"""
