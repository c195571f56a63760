"""Search by image over the web: `infomax serve` runs a FastAPI app with a search page and a JSON API."""
