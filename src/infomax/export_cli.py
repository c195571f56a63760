"""`infomax export`: a trained encoder as an ONNX file (uint8 images -> μ), checked against PyTorch,
or as an encoder-only checkpoint folder; or an embeddings folder into a vector database (Qdrant),
with its metadata."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="write the encoder as ONNX, or embeddings into a vector database",
                              description="--checkpoint RUN --onnx OUT.onnx writes OUT.onnx (uint8 N×C×H×W images in, "
                                          "float32 N×z_dim μ out, the pixel normalization inside) and OUT.json (how to "
                                          "feed it); with onnxruntime installed it runs the file on a few images of the "
                                          "data set and prints the largest difference from PyTorch. "
                                          "--checkpoint RUN --encoder OUT writes the encoder alone as a checkpoint "
                                          "folder (no critics, no training state) that embed, search and serve read. "
                                          "--embeddings EMB --to qdrant:PATH|URL writes every embeddings row, with its "
                                          "metadata, into a Qdrant collection (point id = row).")
    p.add_argument("--checkpoint", help="run folder (its latest checkpoint), a step folder or pretrained:NAME")
    p.add_argument("--onnx", metavar="OUT.onnx", help="ONNX file to write")
    p.add_argument("--encoder", metavar="OUT", help="encoder-only checkpoint folder to write")
    p.add_argument("--embeddings", help="embeddings folder to export into a vector database")
    p.add_argument("--to", metavar="TARGET", help="qdrant:PATH (Qdrant's local mode, a folder) or qdrant:http://HOST:6333")
    p.add_argument("--collection", default="infomax", help="collection to create or fill (default: infomax)")
    p.add_argument("--opset", type=int, help="ONNX opset (default 18)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch at 1 instead of any N")
    p.add_argument("--check", type=int, default=8, metavar="N", help="images to compare with PyTorch (0: none)")
    p.add_argument("--data", help="data spec to take them from (default: the one the checkpoint was trained on)")
    p.set_defaults(func=run)
    return p


def check_images(embedder, spec: str, n: int):
    """The first n images of the spec's held-out split (else its first) -> (uint8 N×C×H×W, where)."""
    from infomax.data import load

    dataset = load(spec, progress=False)
    name = dataset.heldout_split or next(iter(dataset.splits))
    images = dataset.splits[name].images[:n]
    embedder.check_images(images, where=f"images of {spec}")
    return images, f"{len(images)} images of {spec} ({name})"


def run(args: argparse.Namespace) -> int:
    from infomax.errors import InfomaxError

    if bool(args.embeddings) != bool(args.to) or bool(args.checkpoint) != (bool(args.onnx) != bool(args.encoder)) \
            or bool(args.embeddings) == bool(args.checkpoint):
        raise InfomaxError("give either --checkpoint RUN with --onnx OUT.onnx or --encoder OUT (the encoder), or "
                           "--embeddings EMB --to qdrant:PATH (the vectors)")
    if args.embeddings:
        from infomax.vectordb import export_embeddings

        done = export_embeddings(args.embeddings, args.to, args.collection)
        print(f"exported {done['points']} vectors ({done['dim']}-d) with their metadata to collection "
              f"{done['collection']!r} at {done['target']}")
        return 0
    if args.encoder:
        from infomax.checkpoint import save_encoder

        out = save_encoder(args.checkpoint, args.encoder)
        size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
        print(f"wrote {out} ({size:.2f} MB): the encoder of {args.checkpoint}, for --checkpoint {out}")
        return 0
    return export_encoder(args)


def export_encoder(args: argparse.Namespace) -> int:
    from infomax.checkpoint import checkpoint_ref
    from infomax.embed.embedder import Embedder
    from infomax.errors import InfomaxError
    from infomax.export import DEFAULT_OPSET, INSTALL, export_onnx, has_onnxruntime

    if args.check < 0:
        raise InfomaxError(f"--check {args.check}: give a number of images, 0 or more")
    embedder = Embedder.from_checkpoint(args.checkpoint, device="cpu")
    images, where = None, ""
    if args.check and not has_onnxruntime():
        print(f"onnxruntime is not installed: the file is not checked ({INSTALL})")
    elif args.check:
        try:
            images, where = check_images(embedder, args.data or embedder.config["data"]["spec"], args.check)
        except InfomaxError as exc:  # the file is still worth writing
            print(f"not checked: {exc}; pass --data SPEC to check on other images")
    info = export_onnx(embedder, args.onnx, opset=args.opset or DEFAULT_OPSET, dynamic_batch=not args.static_batch,
                       check_images=images, source=checkpoint_ref(args.checkpoint))
    shape = "×".join(str(d) for d in info["input"]["shape"])
    print(f"wrote {args.onnx} (opset {info['opset']}): {info['input']['name']} uint8 {shape} -> "
          f"{info['output']['name']} float32 {info['output']['shape'][0]}×{info['z_dim']}")
    if "check" in info:
        print(f"onnxruntime vs PyTorch on {where}: max abs difference {info['check']['max_abs_diff']:.3g}")
    return 0
