"""Is a `name_or_path` a local folder or a reachable hub repository? Answered in seconds, before transformers would
treat a mistyped path as a hub id (a 20-frame traceback) or retry an unreachable hub for ~50 s.

    check_pretrained("outputs/minimind-tiny-sft")            # a folder: fine
    check_pretrained("jingyaogong/MiniMind2", what="tokenizer")   # one request to the hub, or the local cache
"""

import os
from pathlib import Path

from huggingface_hub import HfApi, constants, is_offline_mode, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .errors import UserError


def looks_like_path(name: str) -> bool:
    """True when `name` cannot be a hub id or is written like a path (./x, /x, ~/x, a/b/c, an existing first folder)."""
    if name.startswith((".", "/", "~")) or os.sep != "/" and os.sep in name or name.count("/") != 1:
        return True
    if Path(name.split("/")[0]).exists():
        return True
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def check_pretrained(name: str, revision: str | None = None, what: str = "model") -> None:
    """Raise a `UserError` naming `name` unless it is a local folder, or a hub repository that is in the local cache
    or answers one request (no retries: `HF_HUB_ETAG_TIMEOUT` seconds at most)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise UserError(f"{what} {name}: is a file, not a folder (expected a folder with config.json, or a hub id)")
    if looks_like_path(name):
        raise UserError(
            f"{what} {name}: neither a local folder nor reachable on the Hugging Face Hub: no such folder "
            f"({path.absolute()} is missing), and it is not a hub id (owner/name)"
        )
    problem = _hub_problem(name, revision)
    if problem:
        raise UserError(
            f"{what} {name}: neither a local folder nor reachable on the Hugging Face Hub: there is no folder "
            f"{path.absolute()}, and the hub: {problem}"
        )


def _cached(name: str, revision: str | None) -> bool:
    try:
        snapshot_download(name, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        return False
    return True


def _hub_problem(name: str, revision: str | None) -> str | None:
    """None when the hub has the repository (or it is cached locally), else why it cannot be used."""
    if _cached(name, revision):
        return None
    if is_offline_mode():
        return "offline mode (HF_HUB_OFFLINE=1) and not in the local cache"
    try:
        HfApi().model_info(name, revision=revision, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except GatedRepoError:
        return None  # it exists; from_pretrained explains the access it needs
    except RevisionNotFoundError:
        return f"it has no revision {revision!r}"
    except RepositoryNotFoundError:
        return "no such model repository, or it is private and no token is set"
    except Exception as err:  # noqa: BLE001 - any network failure (DNS, refused, timeout, 5xx) means "unreachable"
        return f"cannot reach {constants.ENDPOINT}: {type(err).__name__}: {err}"
    return None
