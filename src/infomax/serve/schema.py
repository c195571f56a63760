"""OpenAPI descriptions of the search endpoint, which reads its body itself (two content types)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from infomax.serve.service import DEFAULT_K, MAX_K


class Neighbour(BaseModel):
    row: int = Field(description="gallery row number: post it back as id to search from this image")
    id: str = Field(description="the image's id in the data set (its file or archive member)")
    score: float = Field(description="similarity to the query as the index measures it; higher is closer")
    label: int | None = Field(description="class number, when the data set has labels")
    label_name: str | None = Field(description="class name, when known")
    image_url: str = Field(description="where to fetch the image (PNG)")


class SearchResult(BaseModel):
    query: dict = Field(description='{"type": "upload", "filename", "bytes"} or {"type": "row", "row", "id", ...}')
    k: int
    results: list[Neighbour] = Field(description="nearest first")
    took_ms: float = Field(description="time spent in the server")


class Error(BaseModel):
    error: str = Field(description="what is wrong with the request")


SEARCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "a JPEG, PNG, WebP, GIF, BMP or TIFF image, at most 10 MB and 16.8 megapixels"},
                        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K},
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": {"oneOf": [{"type": "integer", "description": "gallery row number"},
                                         {"type": "string", "description": "image id"}]},
                        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K},
                    },
                },
                "example": {"id": 0, "k": DEFAULT_K},
            },
        },
    }
}

SEARCH_RESPONSES = {
    200: {"model": SearchResult, "description": "the k nearest gallery images (a row query leaves itself out)"},
    400: {"model": Error, "description": "not an accepted image (JPEG, PNG, WebP, GIF, BMP, TIFF), truncated or "
                                         "damaged, over 16.8 megapixels, a malformed multipart body, or invalid JSON"},
    404: {"model": Error, "description": "no gallery image has this id"},
    413: {"model": Error, "description": "upload over 10 MB"},
    415: {"model": Error, "description": "neither multipart/form-data nor application/json, or a non-image upload type"},
    422: {"model": Error, "description": "k out of range, or a missing field"},
    503: {"model": Error, "description": "busy: every upload decode slot and its queue taken; retry after the "
                                         "Retry-After header's seconds"},
}
