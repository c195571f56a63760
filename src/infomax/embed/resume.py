"""The embed.json of an embeddings folder as a job record: what a resumed `infomax embed` must match.

An embed writes embed.json with "complete": false before its first part and rewrites it with
"complete": true and the parts' row counts after its last. A second run into the same folder
compares its own record with the one there: equal -> it embeds only the parts not finished yet;
different -> an error (or, with replace, the old embeddings are removed first).
"""

from __future__ import annotations

import json
from pathlib import Path

from infomax.atomic import atomic_write
from infomax.embed import shards
from infomax.embed.files import EXTRA_FEATURES, INFO, clear_folder, parts_record
from infomax.errors import InfomaxError

# Settings that change the rows; a resumed embed must agree on all of them.
MATCH = ("weights_sha256", "data", "splits", "features", "z_dim", "normalization", "precision", "dtype",
         "part_size", "rows")


def job_info(embedder, source, *, spec: str, checkpoint, features, dtype: str) -> dict:
    """The record of an embed of `source` (an ArraySource or StreamSource, infomax.embed.sources)."""
    from infomax.checkpoint import checkpoint_ref, weights_sha256

    return {
        "checkpoint": checkpoint_ref(checkpoint),
        "weights_sha256": weights_sha256(checkpoint),
        "data": spec,
        "splits": source.splits,
        "features": list(features),
        "z_dim": embedder.z_dim,
        "whitening": embedder.whitening_power,
        "mirror": embedder.mirror,
        "normalization": embedder.normalization,
        "precision": embedder.precision,
        "class_names": source.class_names,
        "dtype": dtype,
        "part_size": source.part_size,  # None for a stream: one part per tar shard
        "rows": int(source.rows),
        "num_parts": int(source.num_parts),
    }


def _holds_embeddings(out: Path) -> bool:
    names = [shards.VECTORS_DIR, shards.METADATA_DIR, shards.LEGACY_VECTORS, shards.LEGACY_METADATA, *EXTRA_FEATURES]
    return any((out / n).exists() for n in names)


def difference(out: Path, info: dict) -> str | None:
    """Why the embeddings in `out` cannot be resumed by this job (None: they can, or there are none)."""
    if not (out / INFO).is_file():
        return f"embeddings without {INFO}" if _holds_embeddings(out) else None
    try:
        old = json.loads((out / INFO).read_text())
    except (OSError, ValueError):
        return f"a damaged {INFO}"
    keys = [k for k in MATCH if old.get(k) != info.get(k)]
    if info.get("weights_sha256") is None and old.get("checkpoint") != info["checkpoint"]:
        keys.insert(0, "checkpoint")
    if not keys:
        return None
    return "; ".join(f"{k}: {old.get(k)!r} there, {info.get(k)!r} now" for k in keys[:3])


def start_folder(out: Path, info: dict, *, replace: bool, main: bool) -> None:
    """Check that `out` is new or resumable (every rank, before any writes), then on rank 0
    clear it when replacing and write the unfinished record."""
    from infomax.train import distributed

    reason = difference(out, info)
    if reason and not replace:
        raise InfomaxError(f"{out} holds other embeddings ({reason}); rerun with the settings they were made "
                           "with to resume them, pass --replace to replace them, or choose another --out")
    distributed.barrier()  # every rank has looked before rank 0 changes anything
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if reason:
            clear_folder(out)
        atomic_write(out / INFO, json.dumps({**info, "complete": False}, indent=2))
    distributed.barrier()


def finish_folder(out: Path, info: dict, seconds: float) -> dict:
    """After every part is written: the complete record, with each part's rows."""
    done = shards.finished_parts(out)
    if done != list(range(info["num_parts"])):
        raise InfomaxError(f"only {len(done)} of {info['num_parts']} parts of {out} were written; "
                           "run the same `infomax embed` again to finish them")
    record = {**info, "seconds": round(seconds, 3), "complete": True, "parts": parts_record(out)}
    atomic_write(out / INFO, json.dumps(record, indent=2))
    return record
