import json

from infomax.cli import main
from tests.eval.helpers import encoder_embeddings


def test_search_by_image_and_bad_image(tmp_path, capsys):
    from PIL import Image

    emb, data = encoder_embeddings(tmp_path / "emb")
    assert main(["index", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "idx")]) == 0
    image = tmp_path / "query.png"
    Image.fromarray(data.splits["train"].images[10, 0]).save(image)
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "idx"), str(image), "--k", "3", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["results"][0]
    assert found["query"] == str(image)
    # the same pixels as gallery row 10 (the train split's image 10): its own vector is the nearest
    assert found["neighbours"][0]["row"] == 10 and found["neighbours"][0]["score"] > 0.999
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    assert main(["search", "--index", str(tmp_path / "idx"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err
