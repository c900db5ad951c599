"""The machine's fp32 limit and a model's FLOPs, for "fraction of the limit reached".

- :func:`model_flops` counts multiply-adds in an ONNX graph's Conv / MatMul / Gemm nodes after
  shape inference at batch 1 (2 FLOPs per multiply-add; pooling, ReLU and adds are ignored:
  they are < 1 % of a convnet's arithmetic).
- :func:`matmul_flops_per_second` times a large square float32 matrix multiply with numpy in a
  child process (so its BLAS thread count and environment are set before numpy loads);
  :func:`ort_matmul_flops_per_second` times the same product in onnxruntime's own GEMM (MLAS,
  the kernels its convolutions use). The limit is the faster of the two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_MATMUL_SCRIPT = r"""
import json, sys, time
import numpy as np
sizes = [int(s) for s in sys.argv[1].split(",")]
repeats = int(sys.argv[2])
out = {"by_size": {}}
rng = np.random.default_rng(0)
for n in sizes:
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    out["by_size"][str(n)] = 2.0 * n ** 3 / best
try:
    import threadpoolctl
    out["blas"] = [
        {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for info in threadpoolctl.threadpool_info()
        if info.get("user_api") == "blas"
    ]
    out["blas_source"] = "threadpoolctl"
except ImportError:  # ask the loaded OpenBLAS itself, as threadpoolctl would
    import ctypes
    found = []
    with open("/proc/self/maps") as maps:
        libs = {l.split()[-1] for l in maps if "openblas" in l.lower() and ".so" in l}
    for lib in sorted(libs):
        handle = ctypes.CDLL(lib)
        info = {"library": lib.rsplit("/", 1)[-1]}
        for key, names, restype in (
            ("architecture", ("openblas_get_corename", "scipy_openblas_get_corename64_",
                              "scipy_openblas_get_corename"), ctypes.c_char_p),
            ("config", ("openblas_get_config", "scipy_openblas_get_config64_",
                        "scipy_openblas_get_config"), ctypes.c_char_p),
            ("num_threads", ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
                             "scipy_openblas_get_num_threads"), ctypes.c_int),
        ):
            for name in names:
                fn = getattr(handle, name, None)
                if fn is not None:
                    fn.restype = restype
                    value = fn()
                    info[key] = value.decode() if isinstance(value, bytes) else value
                    break
        found.append(info)
    out["blas"] = found
    out["blas_source"] = "OpenBLAS symbols (threadpoolctl not installed)"
print(json.dumps(out))
"""

#: Variables that select OpenBLAS' kernel: set on some machines for old OpenBLAS builds, they
#: slow a current numpy down, so the limit is measured without them (noted in the report).
OPENBLAS_KERNEL_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def matmul_flops_per_second(
    threads: int,
    sizes: tuple[int, ...] = (2048, 4096),
    repeats: int = 3,
    *,
    unset_kernel_vars: bool = True,
    python: str | None = None,
) -> dict[str, Any]:
    """Best float32 ``n x n @ n x n`` FLOP/s with numpy using ``threads`` BLAS threads."""
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    removed = {}
    if unset_kernel_vars:
        removed = {k: env.pop(k) for k in OPENBLAS_KERNEL_VARS if k in env}
    proc = subprocess.run(
        [python or sys.executable, "-c", _MATMUL_SCRIPT, ",".join(map(str, sizes)), str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["flops"] = max(result["by_size"].values())
    result["threads"] = threads
    result["unset_env"] = sorted(removed)
    return result


def _matmul_model(n: int) -> bytes:
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", [a, b], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def ort_matmul_flops_per_second(threads: int, n: int = 2048, repeats: int = 3) -> float:
    """Best float32 ``n x n`` MatMul FLOP/s in onnxruntime (MLAS) with ``threads`` threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(_matmul_model(n), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {
        "a": rng.standard_normal((n, n), dtype=np.float32),
        "b": rng.standard_normal((n, n), dtype=np.float32),
    }
    session.run(None, feeds)
    fastest = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, feeds)
        fastest = min(fastest, time.perf_counter() - t0)
    return 2.0 * n**3 / fastest


def model_flops(
    model: str | os.PathLike[str] | Any,
    batch: int = 1,
    *,
    input_shape: Sequence[int] | None = None,
    pinned: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, float]:
    """FLOPs per image (2 x multiply-adds of Conv, MatMul, Gemm), shapes inferred at ``batch``.

    ``model`` is a path or an ``onnx.ModelProto``; dynamic input dimensions are set to
    ``batch``, or all of them to ``input_shape``. ``pinned`` gives the shape of tensors that
    shape inference cannot work out (a crop whose offsets are computed in the graph).
    Returns ``{"total": ..., "Conv": ..., "MatMul": ..., "Gemm": ...}``.
    """
    import onnx
    from onnx import TensorProto, helper

    if input_shape is not None:
        batch = int(input_shape[0])
    if isinstance(model, (str, os.PathLike)):
        proto = onnx.load(os.fspath(model))
    else:  # a copy: never touch the caller's
        proto = onnx.ModelProto.FromString(model.SerializeToString())
    for value in proto.graph.input:
        dims = value.type.tensor_type.shape.dim
        for i, dim in enumerate(dims):
            if input_shape is not None:
                dim.Clear()
                dim.dim_value = int(input_shape[i])
            elif not dim.HasField("dim_value"):
                dim.Clear()
                dim.dim_value = batch
    for name, shape_ in (pinned or {}).items():
        proto.graph.value_info.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape_))
        )
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    shapes: dict[str, list[int]] = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)

    def shape(name: str) -> list[int]:
        got = shapes.get(name)
        if got is None or any(d < 0 for d in got):
            raise ValueError(f"no static shape for tensor {name!r} after shape inference")
        return got

    counts = {"Conv": 0.0, "MatMul": 0.0, "Gemm": 0.0}
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            out = shape(node.output[0])
            weight = shape(node.input[1])  # (Cout, Cin / group, kH, kW)
            per_output = float(np.prod(weight[1:]))
            counts["Conv"] += 2.0 * float(np.prod(out)) * per_output
        elif node.op_type == "MatMul":
            a, out = shape(node.input[0]), shape(node.output[0])
            counts["MatMul"] += 2.0 * float(np.prod(out)) * a[-1]
        elif node.op_type == "Gemm":
            a, out = shape(node.input[0]), shape(node.output[0])
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            k = a[0] if trans_a else a[-1]
            counts["Gemm"] += 2.0 * float(np.prod(out)) * k
    counts_total = dict(counts)
    counts_total["total"] = sum(counts.values())
    return {k: v / batch for k, v in counts_total.items()}
