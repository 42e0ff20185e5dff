"""What both training stages share: config dataclasses and parsing, the dataset and collator
wiring, the Trainer subclass and checkpoint bookkeeping. Entry points in ``experiments/`` use it;
the models never import it."""
