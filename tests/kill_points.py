"""Kill points for the fault-injection tests (``tests/reliability/``).

Each point patches one function so that its ``hit``-th call kills the process with SIGKILL, as
``kill -9`` would: no ``finally`` block, no ``atexit`` handler runs. Points that kill *while a
file is written* first write half of it. ``forked_runs.run_forked(..., point=...)`` arms one in
the child that runs an entry point.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _counting(original: Callable[..., Any], hit: int, before: Callable[..., None] | None = None) -> Callable[..., Any]:
    """``original``, except that its ``hit``-th call runs ``before(*args)`` (if any) and dies."""
    calls = {"n": 0}

    def patched(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == hit:
            if before is not None:
                before(*args, **kwargs)
            _die()
        return original(*args, **kwargs)

    return patched


def _replace_everywhere(original: Any, replacement: Any) -> None:
    """Replace a function in every loaded module that imported it by name."""
    for module in list(sys.modules.values()):
        for name, value in list(getattr(module, "__dict__", {}).items()):
            if value is original:
                setattr(module, name, replacement)


def _half_safetensors(tensors: dict, filename: Any, *args: Any, **kwargs: Any) -> None:
    from safetensors.torch import save as to_bytes

    data = to_bytes(tensors)
    Path(filename).write_bytes(data[: len(data) // 2])


def _half_written_temporary(path: Path, write: Callable[[Path], Any]) -> None:
    """What ``files.write_atomically`` leaves when killed while writing: half of the temporary."""
    from llm2vec.files import temporary_path

    staged = temporary_path(path)
    write(staged)
    staged.write_bytes(staged.read_bytes()[: staged.stat().st_size // 2])


def install(point: str, hit: int) -> None:
    """Arm kill point ``point`` at its ``hit``-th call."""
    import shutil

    import safetensors.torch

    import llm2vec.files as files
    import llm2vec.training.checkpoints as checkpoints
    import llm2vec.training.run_folder as run_folder
    from llm2vec.training.trainer import EmbeddingTrainer

    def half_delete(path: Any, *args: Any, **kwargs: Any) -> None:
        for entry in sorted(Path(path).iterdir())[::2]:
            if entry.is_file():
                entry.unlink()

    if point == "train_step":  # in the middle of training, between checkpoints
        EmbeddingTrainer.compute_loss = _counting(EmbeddingTrainer.compute_loss, hit)
    elif point == "weights_file":  # half of a safetensors file written (checkpoint or final model)
        _replace_everywhere(safetensors.torch.save_file, _counting(safetensors.torch.save_file, hit, _half_safetensors))
    elif point == "checkpoint_marker":  # a checkpoint written completely but not marked
        _replace_everywhere(checkpoints.mark_complete, _counting(checkpoints.mark_complete, hit))
    elif point == "rotation":  # an old checkpoint half deleted by save_total_limit
        checkpoints.shutil = SimpleNamespace(rmtree=_counting(shutil.rmtree, hit, half_delete))
    elif point == "finished_marker":  # everything saved, the finished marker not yet
        _replace_everywhere(run_folder.mark_finished, _counting(run_folder.mark_finished, hit))
    elif point == "encode":  # in the middle of an evaluation task
        from llm2vec.evaluation.mteb_encoder import LLM2VecMTEBEncoder

        LLM2VecMTEBEncoder.encode_texts = _counting(LLM2VecMTEBEncoder.encode_texts, hit)
    elif point == "result_file":  # half of a result (or fingerprint) file written to its temporary
        import llm2vec.evaluation.embedding_cache as embedding_cache

        original = files.write_atomically
        _replace_everywhere(original, _counting(original, hit, _half_written_temporary))
        embedding_cache.write_atomically = original  # its writes have their own point
    elif point == "embedding_chunk":  # half of an embedding cache file written to its temporary
        import llm2vec.evaluation.embedding_cache as embedding_cache

        embedding_cache.write_atomically = _counting(files.write_atomically, hit, _half_written_temporary)
    elif point == "after_task":  # a task's results saved, the next task not started
        from llm2vec.evaluation.runner import OutputFolderCache

        OutputFolderCache.save_to_cache = _after(OutputFolderCache.save_to_cache, hit)
    else:
        raise ValueError(f"unknown kill point {point!r}")


def _after(original: Callable[..., Any], hit: int) -> Callable[..., Any]:
    """``original``, except that the process dies right after its ``hit``-th call returns."""
    calls = {"n": 0}

    def patched(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == hit:
            _die()
        return result

    return patched
