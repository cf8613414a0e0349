"""Reading a data spec (files, folders, globs, hub datasets, mixtures) into one raw, cached `datasets.Dataset`.

Shared by SFT (`minimind_hf.data`) and pretraining (`minimind_hf.pretrain_data`): each passes its own ``to_rows``
(records -> rows) and features; the raw dataset is keyed by the files' bytes, the reader and the reading code.
"""

import logging
import os
import sys

import numpy as np

from . import formats, text_safety
from .fingerprints import code_fingerprint, hash_parts
from .formats import (
    SKIP_INVALID_HINT,
    SFTDataError,
    files_fingerprint,
    hub_reference,
    iter_file,
    iter_rows,
    parse_mixture,
    resolve_local,
)

logger = logging.getLogger(__name__)


def read_sources(dataset_name, to_rows, features, *, seed=42, skip_invalid=False, cache_dir=None):
    """Read a data spec (see `load_sft_dataset`) into one raw, cached ``Dataset``, ``{source: rows used}`` and the
    raw data's fingerprint (files' bytes, reader, reading code, mixture), to key what is computed from it.

    ``to_rows`` turns ``(location, record)`` pairs into rows of ``features``, which must include ``location`` and
    ``error`` columns (`minimind_hf.formats.iter_conversations`, `minimind_hf.pretrain_data.iter_texts`). The first
    bad record raises `SFTDataError` naming file and line, unless ``skip_invalid`` (its row then keeps the error).
    """
    from datasets import concatenate_datasets

    raw_parts, fingerprints, source_rows = [], [], {}
    for index, (source, ratio) in enumerate(parse_mixture(dataset_name)):
        raw, fingerprint = _read_source(source, cache_dir, to_rows, features)
        errors = raw.data.column("error")
        if errors.null_count < len(raw):
            if not skip_invalid:
                first = next(e for e in errors.to_pylist() if e is not None)
                raise SFTDataError(f"{first}\n  ({SKIP_INVALID_HINT})")
            logger.warning("%s: %d invalid records will be skipped", source, len(raw) - errors.null_count)
        raw, fingerprint = _subsample(raw, fingerprint, ratio, seed, index)
        source_rows[source] = source_rows.get(source, 0) + len(raw)
        raw_parts.append(raw)
        fingerprints.append(fingerprint)
    if len(raw_parts) == 1:
        return raw_parts[0], source_rows, fingerprints[0]
    return concatenate_datasets(raw_parts), source_rows, hash_parts("concatenated", *fingerprints)


def _generate_from_files(files, to_rows):
    for path in files:
        yield from to_rows(iter_file(path))


def _generate_from_hub(name, dataset, to_rows):
    yield from to_rows(iter_rows(name, dataset))


def _read_source(source: str, cache_dir, to_rows, features):
    from datasets import Dataset

    reader = f"{to_rows.__module__}.{to_rows.__qualname__}"  # the same file read as conversations or as text
    code = code_fingerprint(formats, text_safety, sys.modules[to_rows.__module__], sys.modules[__name__])
    files = resolve_local(source)
    if files is not None:
        generator, gen_kwargs = _generate_from_files, {"files": files, "to_rows": to_rows}
        fingerprint = hash_parts(reader, code, files_fingerprint(files))
    else:
        hub = _load_hub(source, cache_dir)
        generator, gen_kwargs = _generate_from_hub, {"name": source, "dataset": hub, "to_rows": to_rows}
        # The hub dataset's Arrow files (their paths carry the resolved revision's hash) and their write times.
        arrow_files = [(f["filename"], os.path.getmtime(f["filename"])) for f in hub.cache_files]
        fingerprint = hash_parts("hub", reader, code, source, arrow_files)
    raw = Dataset.from_generator(
        generator, features=features, gen_kwargs=gen_kwargs, cache_dir=cache_dir, fingerprint=fingerprint
    )
    return raw, fingerprint


def _load_hub(source: str, cache_dir):
    """``owner/name`` (its train split), or one file of it: ``owner/name/path/file.jsonl`` or the same as
    ``hf://datasets/owner/name/path/file.jsonl``."""
    from datasets import load_dataset

    repo_id, file = hub_reference(source)  # resolve_local has checked the shape
    if file is None:
        args, kwargs, what = (source,), {}, f"dataset {repo_id}"
    else:
        data_files = source if source.startswith("hf://") else f"hf://datasets/{source}"
        args = ("parquet" if data_files.endswith(".parquet") else "json",)
        kwargs, what = {"data_files": data_files}, f"file {file} of dataset {repo_id}"
    try:
        return load_dataset(*args, split="train", cache_dir=cache_dir, **kwargs)
    except Exception as err:  # offline, not found, gated, bad files: all mean "cannot use this source"
        raise SFTDataError(
            f"{source}: not a local file, directory or glob, and loading {what} from the Hugging Face Hub failed "
            f"({type(err).__name__}: {err})"
        ) from None


def _subsample(raw, fingerprint: str, ratio: float, seed: int, index: int):
    if ratio == 1.0:
        return raw, fingerprint
    rng = np.random.default_rng([seed, index])
    repeats, fraction = divmod(ratio, 1.0)
    n = len(raw)
    extra = np.sort(rng.choice(n, size=round(fraction * n), replace=False))
    indices = np.concatenate([np.tile(np.arange(n), int(repeats)), extra])
    fingerprint = hash_parts(fingerprint, "mix", ratio, seed, index)
    return raw.select(indices, new_fingerprint=fingerprint), fingerprint
