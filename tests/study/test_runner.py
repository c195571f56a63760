from PIL import Image

from infomax.study.runner import side_by_side, summarize, table


def test_summarize_mean_and_half_range():
    assert summarize([0.5]) == "50.00"
    assert summarize([0.50, 0.60]) == "55.00 ± 5.00"
    assert summarize([0.1, 0.2, 0.6]) == "30.00 ± 25.00"


def test_table_rows_and_missing_cells():
    results = {
        "a": [{"steps": 10, "knn_weighted_k200": 0.5, "linear_probe": 0.25}],
        "b": [{"steps": 7, "knn_weighted_k200": 0.4}, {"steps": 8, "knn_weighted_k200": 0.6}],
    }
    lines = table(results, {"a": "first", "b": "second"}).splitlines()
    assert lines[2].startswith("| a | first | 10 | 50.00 |") and "| 25.00 |" in lines[2]
    assert lines[3].startswith("| b | second | 7/8 | 50.00 ± 10.00 |") and "—" in lines[3]


def test_side_by_side_keeps_every_grid(tmp_path):
    paths = {}
    for name, (w, h, colour) in {"x": (30, 20, "red"), "y": (40, 50, "blue")}.items():
        paths[name] = tmp_path / f"{name}.png"
        Image.new("RGB", (w, h), colour).save(paths[name])
    out = Image.open(side_by_side(paths, tmp_path / "all.png"))
    assert out.size == (30 + 16 + 40, 50 + 28)
    assert out.getpixel((5, 28 + 5)) == (255, 0, 0) and out.getpixel((30 + 16 + 5, 28 + 40)) == (0, 0, 255)


def test_side_by_side_wraps_into_rows(tmp_path):
    paths = {}
    for name, colour in {"a": "red", "b": "green", "c": "blue"}.items():
        paths[name] = tmp_path / f"{name}.png"
        Image.new("RGB", (30, 20), colour).save(paths[name])
    out = Image.open(side_by_side(paths, tmp_path / "all.png", columns=2))
    assert out.size == (30 + 16 + 30, (20 + 28) * 2 + 16)
    assert out.getpixel((5, 28 + 5)) == (255, 0, 0) and out.getpixel((46 + 5, 28 + 5)) == (0, 128, 0)
    assert out.getpixel((5, 48 + 16 + 28 + 5)) == (0, 0, 255)  # the third grid starts the second row
    assert out.getpixel((46 + 5, 48 + 16 + 28 + 5)) == (255, 255, 255)
