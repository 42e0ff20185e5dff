"""Reporting: evaluation results as the paper's tables and plots, and the paper's own numbers.

Modules: ``results_io`` (result folders -> scores), ``tables`` (Table 1 / Tables 14-15 layouts),
``paper_results`` (the paper's tables as data), ``plots`` (loss curves, score-vs-step figures).
Used by ``scripts/make_table.py``, ``scripts/plot_training.py`` and the examples; nothing in
training or evaluation imports it.
"""
