"""The Streamlit app's shared parts: the shell (navigation), run pickers, cached loaders, charts, the
job-manager singleton, claims display and the Runs page's widgets. `app.py` registers the pages in
`app_pages/`; `prunelab` never imports streamlit nor this package."""
