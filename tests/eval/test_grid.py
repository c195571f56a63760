import numpy as np

from infomax.eval.grid import FRAME, GAP, OTHER, SAME, Block, draw_grid, grid_neighbours, select_queries, upscale_factor


def test_query_selection_is_pure_and_prefix_stable():
    candidates = np.arange(1000, 1100)
    a = select_queries(candidates, 10, seed=3)
    assert np.array_equal(a, select_queries(candidates, 10, seed=3))
    assert np.array_equal(select_queries(candidates, 4, seed=3), a[:4])
    assert not np.array_equal(a, select_queries(candidates, 10, seed=4))
    assert set(a) <= set(candidates) and len(set(a)) == 10
    assert len(select_queries(candidates, 500, seed=0)) == 100


def test_a_query_never_finds_itself():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 5)).astype(np.float32)
    vectors[41] = vectors[7]  # an exact duplicate of query 7 may be found; 7 itself may not
    gallery = np.arange(0, 50)
    queries = np.array([7, 12, 49, 55])  # 55 is outside the gallery
    for metric in ("cosine", "l2"):
        rows = grid_neighbours(vectors, gallery, vectors[queries], queries, k=9, metric=metric)
        assert rows.shape == (4, 9)
        assert not (rows == queries[:, None]).any()
        assert rows[0, 0] == 41
        assert set(rows.ravel()) <= set(gallery)


def test_pixels_are_drawn_exactly_as_stored_with_frames():
    rng = np.random.default_rng(0)
    queries = rng.integers(0, 256, size=(2, 3, 8, 8), dtype=np.uint8)
    neighbours = rng.integers(0, 256, size=(2, 3, 3, 8, 8), dtype=np.uint8)
    same = np.array([[True, False, True], [False, False, True]])
    scale = upscale_factor(8)
    assert scale == 12
    image = np.asarray(draw_grid(queries, [Block("cosine", neighbours, same)], ["a", "b"], scale=scale))
    tile = 8 * scale
    expected = neighbours[0, 0].transpose(1, 2, 0).repeat(scale, 0).repeat(scale, 1)
    # find the first neighbour tile: its pixel block appears verbatim somewhere in the image
    ys, xs = np.nonzero((image[:, :, 0] == expected[0, 0, 0]) & (image[:, :, 1] == expected[0, 0, 1]) & (image[:, :, 2] == expected[0, 0, 2]))
    hits = [(y, x) for y, x in zip(ys, xs) if np.array_equal(image[y : y + tile, x : x + tile], expected)]
    assert hits, "the neighbour's pixels must appear unchanged"
    y, x = hits[0]
    assert tuple(image[y - 1, x]) == SAME  # its frame: same class
    second = x + tile + 2 * FRAME + GAP  # the next neighbour's pixels start here
    assert tuple(image[y - 1, second]) == OTHER
    np.testing.assert_array_equal(image[y : y + tile, second : second + tile],
                                  neighbours[0, 1].transpose(1, 2, 0).repeat(scale, 0).repeat(scale, 1))


def blocks_of(mask, side):
    """Number of side×side all-True squares whose top-left corner starts a run (tiles in a mask)."""
    from numpy.lib.stride_tricks import sliding_window_view

    full = sliding_window_view(mask, (side, side)).all(axis=(2, 3))
    return int(full.sum())


def test_grayscale_images_are_drawn():
    q = np.full((1, 1, 4, 4), 7, np.uint8)
    n = np.full((1, 2, 1, 4, 4), 200, np.uint8)
    image = np.asarray(draw_grid(q, [Block("l2", n)], None, scale=2))
    assert blocks_of((image == 7).all(axis=2), 8) == 1  # the query, 4×4 pixels shown 8×8
    assert blocks_of((image == 200).all(axis=2), 8) == 2  # both neighbours, exact gray value
