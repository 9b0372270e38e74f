"""What the pages and the reports read: run directories turned into tables, figures and lessons.

`results` reads run directories for the app (the runs table, metrics, method artefacts; missing told from
corrupt); `tables` holds the pure computations behind the analysis pages (rank correlations, similarity
gaps, UMAP embeddings, histograms, ablation and sweep tables); `lessons` sets the papers' claims beside
what the runs measure, `references` holds the papers' published results, and `lesson_runs` picks the runs
each page opens on; `live` is what the live view and the home page show of a run; `views` computes a
finished run's heavy views ahead of time; `method_card` is a run's form, formulas and departures; `tours`
(with `tour_base`, `tour_slimming`, `tour_manidp`) holds the guided tours of both papers, step by step, that the
Lessons page and the handout render; `figures` the Plotly figures the pages, the tours and the handout share. All
of it is Streamlit-free and unit-tested; the app's components only draw what it returns.
"""
