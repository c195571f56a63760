"""Many searches at once give the same answers as one at a time, through real HTTP."""

import asyncio
import threading

import httpx
from infomax.serve.service import Query
from tests.serve.conftest import encode


def test_threads_share_batches_and_get_their_own_answers(service, stack):
    images = stack.data.splits["test"].images[:24]
    queries = [Query(k=5, image=stack.embedder.load_image(encode(p))) for p in images] + \
              [Query(k=3 + i % 5, row=i) for i in range(24)]
    alone = [service.search(q) for q in queries]
    batches_before = service.batcher.batches
    together = [None] * len(queries)

    def ask(i):
        together[i] = service.search(queries[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(queries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        assert a.rows == b.rows
        assert all(abs(x - y) < 1e-4 for x, y in zip(a.scores, b.scores))
    assert service.batcher.batches - batches_before < len(queries)  # some searches shared a batch


def test_concurrent_http_clients_on_a_real_server(live_url, stack):
    png = encode(stack.data.splits["test"].images[4])

    async def load():
        async with httpx.AsyncClient(base_url=live_url, timeout=30) as http:
            ids = [http.post("/api/search", json={"id": i, "k": 5}) for i in range(40)]
            ups = [http.post("/api/search", files={"file": ("q.png", png, "image/png")}) for _ in range(20)]
            bad = [http.post("/api/search", files={"file": ("q.png", b"junk", "image/png")}) for _ in range(5)]
            return await asyncio.gather(*ids, *ups, *bad)

    replies = asyncio.run(load())
    assert [r.status_code for r in replies] == [200] * 60 + [400] * 5
    assert len({tuple(x["row"] for x in r.json()["results"]) for r in replies[40:60]}) == 1
    for i, reply in enumerate(replies[:40]):
        assert reply.json()["query"]["row"] == i and len(reply.json()["results"]) == 5
