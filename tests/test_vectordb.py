"""Export to Qdrant (its local mode): every row arrives with its metadata, and searches agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("qdrant_client")

from infomax.embed.files import Embeddings, save_embeddings  # noqa: E402
from infomax.errors import InfomaxError  # noqa: E402
from infomax.vectordb import connect, export_embeddings, parse_target  # noqa: E402

N, D = 53, 6


def _folder(tmp_path, part_size=10):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(N, D)).astype(np.float32)
    labels = pd.array([i % 4 if i % 7 else pd.NA for i in range(N)], dtype="Int64")  # some unknown
    metadata = pd.DataFrame({"id": [f"img/{i:03d}.png" for i in range(N)],
                             "split": ["train"] * 40 + ["test"] * (N - 40), "label": labels,
                             "label_name": ["" if i % 7 == 0 else f"class{i % 4}" for i in range(N)]})
    save_embeddings(tmp_path / "emb", Embeddings(vectors, metadata, {"z_dim": D}), part_size=part_size)
    return tmp_path / "emb", vectors, metadata


def test_every_row_and_its_metadata_arrive(tmp_path):
    emb, vectors, metadata = _folder(tmp_path)
    target = f"qdrant:{tmp_path / 'db'}"
    done = export_embeddings(emb, target, "photos", batch=8, progress=False)  # batches cross the parts
    assert done == {"collection": "photos", "points": N, "dim": D, "target": target}
    client = connect(target)
    try:
        assert client.count("photos", exact=True).count == N
        points = client.retrieve("photos", ids=list(range(N)), with_vectors=True, with_payload=True)
        by_row = {p.id: p for p in points}
        unit = vectors.astype(np.float64) / np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
        for row in range(N):  # a server stores cosine vectors normalized, the local mode as given
            got = np.asarray(by_row[row].vector, dtype=np.float64)
            np.testing.assert_allclose(got / np.linalg.norm(got), unit[row], rtol=0, atol=1e-6)
            meta = metadata.iloc[row]
            expected = {"id": meta["id"], "split": meta["split"], "label_name": meta["label_name"]}
            if row % 7:
                expected["label"] = int(meta["label"])
            assert by_row[row].payload == expected
        for q in (0, 17, 52):  # the database's nearest rows are the exact float64 cosine ones
            hits = client.query_points("photos", query=vectors[q].tolist(), limit=5).points
            assert [h.id for h in hits] == list(np.argsort(-(unit @ unit[q]), kind="stable")[:5])
    finally:
        client.close()


def test_a_rerun_completes_without_duplicates(tmp_path):
    emb, _, _ = _folder(tmp_path)
    target = f"qdrant:{tmp_path / 'db'}"
    export_embeddings(emb, target, progress=False)
    export_embeddings(emb, target, progress=False)
    client = connect(target)
    try:
        assert client.count("infomax", exact=True).count == N
    finally:
        client.close()


def test_bad_targets_and_a_collection_of_another_size(tmp_path):
    for bad in ("qdrant:", "milvus:/x", "db"):
        with pytest.raises(InfomaxError, match="qdrant:PATH"):
            parse_target(bad)
    emb, _, _ = _folder(tmp_path)
    target = f"qdrant:{tmp_path / 'db'}"
    client = connect(target)
    from qdrant_client import models

    client.create_collection("other", vectors_config=models.VectorParams(size=D + 1, distance=models.Distance.COSINE))
    client.close()
    with pytest.raises(InfomaxError, match=f"holds {D + 1}-d vectors, these are {D}-d"):
        export_embeddings(emb, target, "other", progress=False)


def test_the_command(tmp_path, capsys):
    from infomax.cli import main

    emb, _, _ = _folder(tmp_path)
    db = tmp_path / "db"
    assert main(["export", "--embeddings", str(emb), "--to", f"qdrant:{db}", "--collection", "c10"]) == 0
    assert f"exported {N} vectors ({D}-d)" in capsys.readouterr().out
    client = connect(f"qdrant:{db}")
    try:
        assert client.count("c10", exact=True).count == N
    finally:
        client.close()
    assert main(["export", "--embeddings", str(emb)]) == 2  # no target
    assert main(["export", "--embeddings", str(emb), "--to", f"qdrant:{db}", "--onnx", "x.onnx"]) == 2
    assert "give either --checkpoint RUN with --onnx OUT.onnx or --encoder OUT" in capsys.readouterr().err
