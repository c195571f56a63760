"""Search: faiss indexes over embeddings, and nearest-neighbour queries against them."""
