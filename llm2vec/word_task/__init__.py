"""llm2vec's word-level probing tasks: a linear classifier on a frozen model's per-token states.

``experiments/run_word_task.py`` wires :mod:`.alignment` (which token predicts which word's tag),
:mod:`.features` (the frozen model's hidden states, computed once), :mod:`.probe` (the classifier
and its training) and :mod:`.metrics` (token accuracy, chunk precision/recall/F1).
"""
