"""Where the evaluation script writes results: ``<output_dir>/<model>/<revision>/<task>.json``."""

from __future__ import annotations

from pathlib import Path

from mteb import ResultCache
from mteb.models.model_meta import ModelMeta

__all__ = ["OutputFolderCache"]


class OutputFolderCache(ResultCache):
    """mteb's result cache writing to ``<output_dir>/<model>/<revision>/<task>.json``.

    ``ResultCache`` puts results under ``<cache_path>/results/``; this one drops that level, so
    the output folder has the layout of ``MTEB(...).run(output_folder=...)``. Everything else
    (saving after each subset, resuming, ``model_meta.json``) is mteb's.
    """

    def get_task_result_path(
        self,
        task_name: str,
        model_name: str | ModelMeta,
        model_revision: str | None = None,
        remote: bool = False,
        experiment_name: str | None = None,
    ) -> Path:
        path = super().get_task_result_path(task_name, model_name, model_revision, remote, experiment_name)
        if remote:
            return path
        return self.cache_path / path.relative_to(self.cache_path / "results")
