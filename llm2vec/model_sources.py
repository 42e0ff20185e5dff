"""Where a model comes from, checked before and while it loads, with errors a user can act on.

A name that looks like a path must be an existing folder (it is never sent to the hub); an
adapter records the base (and earlier adapters) it was trained on in ``adapter_base.json``, and
applying it to another base is refused unless asked for; a weight file that cannot be read, or an
adapter whose shapes do not fit the base, is named in one line instead of a library's long trace.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from llm2vec.fingerprint import chain_fingerprint, same_source

logger = logging.getLogger(__name__)

ADAPTER_BASE_NAME = "adapter_base.json"


class ModelSourceError(ValueError):
    """A model, adapter or weight file that cannot be used as given; the message says what to do."""


def looks_like_path(name: str | os.PathLike) -> bool:
    """Whether ``name`` is meant as a local path rather than a hub id (``organization/model``)."""
    text = str(name)
    return (
        isinstance(name, Path)
        or os.path.isabs(text)
        or text.startswith((".", "~"))
        or text.endswith(("/", os.sep))
        or "\\" in text
        or text.count("/") >= 2
        or os.path.exists(text)
    )


def check_source(name_or_path: str | os.PathLike, what: str = "model") -> None:
    """Refuse a path that does not exist before transformers mistakes it for a hub id.

    Raises:
        ModelSourceError: ``name_or_path`` looks like a path and is not a folder.
    """
    if looks_like_path(name_or_path) and not Path(name_or_path).expanduser().is_dir():
        raise ModelSourceError(
            f"{what} folder {name_or_path} does not exist (it was not taken for a hub id because it looks like a "
            "path; a hub id is written organization/model)"
        )


def write_adapter_base(folder: str | os.PathLike, sources: Sequence[str | os.PathLike]) -> None:
    """Record in ``folder`` (an adapter) the base model and earlier adapters it was trained on."""
    record = {"sources": [str(s) for s in sources], "fingerprints": chain_fingerprint(sources)}
    (Path(folder) / ADAPTER_BASE_NAME).write_text(json.dumps(record, indent=2) + "\n")


def check_adapter_base(adapter: str | os.PathLike, sources: Sequence[str | os.PathLike], allow_mismatch: bool) -> None:
    """Refuse ``adapter`` on a base (``sources``: base, then adapters merged before) other than its own.

    An adapter without a record (trained elsewhere) is compared by PEFT's
    ``base_model_name_or_path`` where both are hub ids; a local copy of a hub model can be told
    apart from another model only by content, so that case passes with a log line.

    Raises:
        ModelSourceError: the adapter was trained on another base, and ``allow_mismatch`` is off.
    """
    folder = Path(adapter)
    record_path = folder / ADAPTER_BASE_NAME
    given = [str(s) for s in sources]
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        recorded, fingerprints = record.get("sources", []), record.get("fingerprints", [])
        verdicts = [same_source(r, g) for r, g in zip(fingerprints, chain_fingerprint(given))]
        mismatch = len(fingerprints) != len(given) or False in verdicts
        if None in verdicts and not mismatch:
            logger.info("%s: cannot compare a hub id with a local folder by content; assuming the same base", adapter)
    else:
        recorded = [_peft_base(folder)]
        mismatch = (
            recorded[0] is not None and len(given) == 1 and not looks_like_path(recorded[0])
            and not looks_like_path(given[0]) and recorded[0] != given[0]
        )
    if mismatch:
        message = (
            f"adapter {adapter} was trained on {' + '.join(map(str, recorded))}, not on {' + '.join(given)} "
            "(different weights); pass allow_base_mismatch=True (--allow_base_mismatch) to apply it anyway"
        )
        if not allow_mismatch:
            raise ModelSourceError(message)
        logger.warning("%s; applying it as asked", message)


def _peft_base(folder: Path) -> str | None:
    try:
        return json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError):
        return None


def explain_load_error(error: Exception, folders: Sequence[str | os.PathLike]) -> ModelSourceError | None:
    """One line for a loading failure whose cause is in the files: an unreadable weight file
    (truncated, not safetensors) or an adapter whose shapes do not fit the base; else None."""
    from safetensors import safe_open

    for folder in (Path(f) for f in folders if Path(f).is_dir()):
        for path in sorted(folder.glob("*.safetensors")):
            try:  # checks the header and that the data it declares is all there
                with safe_open(str(path), framework="pt"):
                    pass
            except Exception as problem:  # noqa: BLE001 - any failure to read is the answer
                return ModelSourceError(
                    f"{path} cannot be read as safetensors ({problem}); it may be truncated or damaged: "
                    "copy or save it again"
                )
    text = str(error)
    if "size mismatch" in text:
        first = next((line.strip() for line in text.splitlines() if "size mismatch" in line), text[:300])
        return ModelSourceError(
            f"the adapter does not fit the base model (another model size or architecture?): {first}"
        )
    return None

