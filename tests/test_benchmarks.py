"""The benchmark package's own machinery: registry, CLI, JSON, ratio maths, baselines.

The benchmarks themselves are never run (nor timed) here; only their parts, on tiny inputs.
"""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``benchmarks`` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

import benchmarks  # noqa: E402
from benchmarks import _baselines, _common, _flops  # noqa: E402
from benchmarks.__main__ import _jsonable, build_parser, main  # noqa: E402

# --- registry ---------------------------------------------------------------------------------


def test_registry_names_the_issue_benchmarks() -> None:
    assert list(benchmarks.BENCHMARKS) == [
        "sampling",
        "embedding",
        "retrieval",
        "e2e",
        "overlap",
        "labels",
        "index",
        "render",
        "cheap_inference",
        "web",
        "scale",
        "quality",
    ]
    for bench in benchmarks.BENCHMARKS.values():
        assert bench.module.startswith("benchmarks.")
        assert bench.summary


def test_select_keeps_registry_order_and_drops_duplicates() -> None:
    picked = benchmarks.select(["render", "sampling", "render"])
    assert [b.name for b in picked] == ["sampling", "render"]
    assert [b.name for b in benchmarks.select([])] == list(benchmarks.BENCHMARKS)


def test_select_unknown_name_lists_the_choices() -> None:
    with pytest.raises(KeyError, match=r"nope.*choose from: sampling"):
        benchmarks.select(["sampling", "nope"])


def test_own_benchmark_modules_import_and_expose_their_function() -> None:
    # index_bench / render_bench belong to other parts; ours must resolve without running
    for name in (
        "sampling",
        "embedding",
        "retrieval",
        "e2e",
        "overlap",
        "labels",
        "cheap_inference",
        "web",
        "quality",
    ):
        assert callable(benchmarks.BENCHMARKS[name].load())


# --- CLI and JSON -----------------------------------------------------------------------------


def test_parser_reads_names_and_flags(tmp_path: Path) -> None:
    args = build_parser().parse_args(["sampling", "e2e", "--quick", "--json", str(tmp_path / "o")])
    assert args.names == ["sampling", "e2e"]
    assert args.quick is True
    assert args.json == tmp_path / "o"
    defaults = build_parser().parse_args([])
    assert defaults.names == []
    assert defaults.quick is False
    assert defaults.json is None


def test_jsonable_makes_strict_json() -> None:
    data = {"a": math.nan, "b": [np.float32(1.5), np.int64(3)], "c": Path("/x"), 4: math.inf}
    out = _jsonable(data)
    assert out == {"a": None, "b": [1.5, 3], "c": "/x", "4": None}
    json.dumps(out, allow_nan=False)


@pytest.fixture
def fake_benchmarks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Replace the registry with one good and one failing benchmark; records quick flags."""
    seen: list[bool] = []
    module = types.ModuleType("fake_bench_module")

    def good(quick: bool) -> dict[str, object]:
        seen.append(quick)
        return {
            "description": "fake",
            "rows": [{"case": "a", "seconds": 2.0}, {"case": "b", "seconds": 1.0}],
            "ratios": {"a_vs_b": 2.0, "undefined": math.nan},
            "targets": [_common.target("a vs b", 2.0, ">= 1.5")],
        }

    def bad(quick: bool) -> dict[str, object]:
        raise RuntimeError("media generation failed")

    module.good = good  # type: ignore[attr-defined]
    module.bad = bad  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_bench_module", module)
    registry = {
        "good": benchmarks.Benchmark("good", "fake_bench_module", "good", "works"),
        "bad": benchmarks.Benchmark("bad", "fake_bench_module", "bad", "fails"),
    }
    monkeypatch.setattr(benchmarks, "BENCHMARKS", registry)
    monkeypatch.setattr(sys.modules["benchmarks.__main__"], "BENCHMARKS", registry)
    return seen


def test_main_writes_json_with_machine_info(
    fake_benchmarks: list[bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "results.json"
    code = main(["good", "--quick", "--json", str(out), "--media-dir", str(tmp_path / "media")])
    assert code == 0
    assert fake_benchmarks == [True]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    machine = report["machine"]
    assert machine["logical_cpus"] >= 1
    assert machine["cpu_model"]
    assert "onnxruntime" in machine["versions"]
    assert "av" in machine["versions"]
    good = report["benchmarks"]["good"]
    assert good["ratios"] == {"a_vs_b": 2.0, "undefined": None}
    assert good["targets"][0]["met"] is True
    assert good["wall_s"] >= 0
    printed = capsys.readouterr().out
    assert "== good" in printed
    assert "[met] a vs b: 2 (goal >= 1.5)" in printed


def test_markdown_report_and_replay_from_json(
    fake_benchmarks: list[bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["good", "bad", "--json", str(out), "--markdown", str(md)]) == 1
    text = md.read_text()
    assert "### good" in text
    assert "| case | seconds |" in text
    assert "| a | 2 |" in text
    assert "- target a vs b >= 1.5: 2 (met)" in text
    assert "Failed: `RuntimeError: media generation failed`" in text
    capsys.readouterr()
    replay = tmp_path / "again.md"
    assert main(["--from-json", str(out), "--markdown", str(replay)]) == 0
    assert fake_benchmarks == [False]  # nothing ran again
    assert replay.read_text() == text
    assert "== good" in capsys.readouterr().out


def test_main_keeps_going_after_a_failure_and_exits_1(
    fake_benchmarks: list[bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code = main(["bad", "good", "--json", str(out)])
    assert code == 1
    report = json.loads(out.read_text())
    assert report["benchmarks"]["bad"]["error"] == "RuntimeError: media generation failed"
    assert "rows" in report["benchmarks"]["good"]
    assert fake_benchmarks == [False]
    assert "FAILED: RuntimeError" in capsys.readouterr().out


def test_main_rejects_unknown_names(fake_benchmarks: list[bool]) -> None:
    assert main(["nope"]) == 2
    assert fake_benchmarks == []


# --- ratio maths and formatting ---------------------------------------------------------------


def test_ratio_and_speedup() -> None:
    assert _common.ratio(6.0, 2.0) == 3.0
    assert math.isnan(_common.ratio(1.0, 0.0))
    assert math.isnan(_common.ratio(math.nan, 1.0))
    assert _common.speedup(baseline_seconds=10.0, candidate_seconds=2.5) == 4.0


@pytest.mark.parametrize(
    ("value", "goal", "met"),
    [(5.0, ">= 5", True), (4.99, ">= 5", False), (1.15, "<= 1.15", True), (1.2, "<= 1.15", False)],
)
def test_target_verdicts(value: float, goal: str, met: bool) -> None:
    assert _common.target("t", value, goal)["met"] is met


def test_target_rejects_unknown_operator() -> None:
    with pytest.raises(ValueError, match="goal must start"):
        _common.target("t", 1.0, "== 1")


@given(st.floats(min_value=1e-12, max_value=1e12), st.integers(min_value=1, max_value=8))
def test_round_sig_keeps_relative_precision(value: float, digits: int) -> None:
    rounded = _common.round_sig(value, digits)
    assert abs(rounded - value) <= value * 10 ** (1 - digits) / 2 * 1.0001


def test_interleaved_runs_round_robin_and_best_is_the_fastest() -> None:
    calls: list[str] = []
    timings = _common.interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3
    )
    assert calls == ["a", "b"] * 3
    assert {k: len(v) for k, v in timings.items()} == {"a": 3, "b": 3}
    ts = [_common.Timing(3.0, 1.0), _common.Timing(1.0, 2.0), _common.Timing(2.0, 0.5)]
    assert _common.best(ts) == _common.Timing(1.0, 2.0)
    assert _common.Timing(2.0, 3.0).cpu_utilisation == 1.5
    with pytest.raises(ValueError, match="repeats"):
        _common.interleaved({"a": lambda: None}, 0)


def test_format_table_aligns_columns_and_falls_back_for_foreign_results() -> None:
    table = _common.format_table([{"case": "x", "s": 1.23456}, {"case": "long name", "n": 3}])
    header, rule, first, _second = table.splitlines()
    assert header.split() == ["case", "s", "n"]
    assert first.split() == ["x", "1.235"]
    assert len(header) == len(rule)
    text = _common.format_result("foreign", {"adds_per_s": 10.0, "recall": {"k10": 0.99}})
    assert "adds_per_s: 10" in text
    assert "recall.k10: 0.99" in text


# --- baselines on tiny media ------------------------------------------------------------------


@given(
    st.floats(min_value=0.0, max_value=100.0),
    st.sampled_from([0.5, 1.0, 2.0, 29.97]),
)
def test_sample_times_cover_the_duration_at_the_rate(duration: float, fps: float) -> None:
    times = _baselines.sample_times(duration, fps)
    assert len(times) == max(0, math.ceil(duration * fps - 1e-9))
    assert all(t < duration for t in times)
    assert np.allclose(np.diff(times), 1.0 / fps)


def test_seek_command_is_the_original_per_second_extraction(tmp_path: Path) -> None:
    cmd = _baselines.seek_command("ffmpeg", "in.mp4", 3.0, tmp_path / "o.jpg")
    joined = " ".join(cmd)
    assert "-accurate_seek -ss 3.000 -i in.mp4 -frames:v 1" in joined
    assert cmd.index("-ss") < cmd.index("-i")  # input seek (the fast, keyframe-based kind)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avajams.testing import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", duration=3.0, fps=24.0, tag=5)


def test_seek_jpegs_extract_the_frame_at_each_second(tiny_clip: Path, tmp_path: Path) -> None:
    from avajams.testing import read_frame_code

    jpegs = _baselines.seek_jpegs(tiny_clip, [0.0, 1.0, 2.0], tmp_path / "j")
    assert [p.name for p in jpegs] == ["c_000000.jpg", "c_000001.jpg", "c_000002.jpg"]
    images = [_baselines.load_image(p, 128) for p in jpegs]
    assert all(im.shape == (128, 128, 3) and im.dtype == np.uint8 for im in images)
    assert [read_frame_code(im) for im in images] == [(5, 0), (5, 24), (5, 48)]


def test_naive_sample_keeps_one_frame_per_second(tiny_clip: Path) -> None:
    from avajams.testing import read_frame_code

    times, images = _baselines.naive_sample(tiny_clip, fps=1.0, size=96)
    assert np.allclose(times, [0.0, 1.0, 2.0], atol=1e-3)
    assert images.shape == (3, 96, 96, 3)
    assert [read_frame_code(im) for im in images] == [(5, 0), (5, 24), (5, 48)]
    assert _baselines.video_duration(tiny_clip) == pytest.approx(3.0, abs=0.05)


class _MeanColourEmbedder:
    """Tiny deterministic embedder: the unit mean colour (records batch sizes)."""

    id = "mean-colour"
    dim = 3
    input_size = (64, 64)

    def __init__(self) -> None:
        self.batches: list[int] = []

    def embed(self, images: np.ndarray) -> np.ndarray:
        self.batches.append(len(images))
        v: np.ndarray = images.reshape(len(images), -1, 3).mean(axis=1).astype(np.float32) + 1.0
        out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out


def test_original_index_embeds_one_jpeg_per_second_one_at_a_time(
    tiny_clip: Path, tmp_path: Path
) -> None:
    embedder = _MeanColourEmbedder()
    sigs = _baselines.original_index([tiny_clip], embedder, tmp_path / "work")
    assert embedder.batches == [1, 1, 1]
    (sig,) = sigs.values()
    assert sig.shape == (3,)
    assert sig.dtype == np.float32
    assert np.linalg.norm(sig) == pytest.approx(1.0, abs=1e-6)
    assert len(list((tmp_path / "work").rglob("*.jpg"))) == 3


def test_mean_signature_is_unit_and_rejects_zero() -> None:
    v = np.array([[1, 0], [0, 1]], dtype=np.float32)
    assert np.allclose(_baselines.mean_signature(v), [2**-0.5, 2**-0.5])
    with pytest.raises(ValueError, match="zero"):
        _baselines.mean_signature(np.array([[1, 0], [-1, 0]], dtype=np.float32))


# --- FLOP counting ----------------------------------------------------------------------------


def _tiny_model() -> object:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    dw = numpy_helper.from_array(np.zeros((8, 1, 3, 3), np.float32), "dw")
    m = numpy_helper.from_array(np.zeros((8, 5), np.float32), "m")
    g = numpy_helper.from_array(np.zeros((5, 4), np.float32), "g")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], pads=[1, 1, 1, 1]),  # (N, 8, 10, 10)
        helper.make_node("Conv", ["c1", "dw"], ["c2"], group=8, strides=[2, 2]),  # (N,8,4,4)
        helper.make_node("GlobalAveragePool", ["c2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "m"], ["mm"]),  # (N, 5)
        helper.make_node("Gemm", ["mm", "g"], ["y"]),  # (N, 4)
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [w, dw, m, g],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("batch", [1, 3])
def test_model_flops_counts_conv_matmul_gemm_per_image(batch: int) -> None:
    flops = _flops.model_flops(_tiny_model(), batch=batch)
    assert flops["Conv"] == 2 * (8 * 10 * 10 * 3 * 3 * 3) + 2 * (8 * 4 * 4 * 1 * 3 * 3)
    assert flops["MatMul"] == 2 * 5 * 8
    assert flops["Gemm"] == 2 * 4 * 5
    assert flops["total"] == flops["Conv"] + flops["MatMul"] + flops["Gemm"]


def test_model_flops_with_input_shape_and_pinned_tensors() -> None:
    from onnx import TensorProto, helper, numpy_helper

    # a crop whose offsets are computed in the graph: shape inference cannot follow it
    inits = [
        numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w"),
        numpy_helper.from_array(np.array([2, 2], np.int64), "two"),
        numpy_helper.from_array(np.array([4, 4], np.int64), "four"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["hw"], start=2, end=4),
        helper.make_node("Sub", ["hw", "four"], ["margin"]),
        helper.make_node("Div", ["margin", "two"], ["starts"]),
        helper.make_node("Add", ["starts", "four"], ["ends"]),
        helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["crop"]),
        helper.make_node("Conv", ["crop", "w"], ["y"]),  # (N, 8, 2, 2)
    ]
    graph = helper.make_graph(
        nodes,
        "crop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 2, 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match="no static shape"):
        _flops.model_flops(model, input_shape=(2, 3, 10, 12))
    flops = _flops.model_flops(model, input_shape=(2, 3, 10, 12), pinned={"crop": (2, 3, 4, 4)})
    assert flops["Conv"] == 2 * (8 * 2 * 2 * 3 * 3 * 3)


# --- retrieval helpers ------------------------------------------------------------------------


def test_recall_counts_video_and_frame_hits() -> None:
    from benchmarks.retrieval_bench import recall

    eye = np.eye(6, dtype=np.float32)
    library = [eye[:3], eye[3:]]  # video 0: frames 0-2, video 1: frames 3-5
    queries = [
        (eye[[3, 4]], 1, np.array([0, 1])),  # right video, right frames
        (eye[[0, 5]], 1, np.array([0, 2])),  # a signature tie goes to video 0: a miss
        (eye[[2]], 0, np.array([0])),  # right video, two seconds off: not a frame hit
    ]
    video, frame = recall(library, queries)
    assert video == pytest.approx(2 / 3)
    assert frame == pytest.approx(3 / 5)


def test_transforms_keep_shape_and_change_the_frames() -> None:
    from benchmarks.retrieval_bench import TRANSFORMS

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 40, 30, 3), dtype=np.uint8)
    for name, transform in TRANSFORMS.items():
        out = transform(images)
        assert out.shape == images.shape, name
        assert out.dtype == np.uint8, name
        assert not np.array_equal(out, images), name


# --- cheap inference helpers ------------------------------------------------------------------


def test_thumbnails_are_area_averages() -> None:
    from benchmarks.cheap_inference_bench import thumbnails

    images = np.zeros((2, 32, 48, 3), np.uint8)
    images[1, :16, :24] = 255  # top-left quarter white
    thumbs = thumbnails(images, size=4)
    assert thumbs.shape == (2, 4, 4)
    assert np.all(thumbs[0] == 0)
    assert np.allclose(thumbs[1][:2, :2], 255)
    assert np.allclose(thumbs[1][2:, :], 0)
    assert np.allclose(thumbs[1][:, 2:], 0)


def test_keep_mask_compares_with_the_last_embedded_frame() -> None:
    from benchmarks.cheap_inference_bench import keep_mask

    # a slow drift of 1 per frame: the previous frame is always within 1.5, the anchor is not
    thumbs = np.stack([np.full((4, 4), v, np.float32) for v in (0, 1, 2, 3, 10, 10)])
    assert keep_mask(thumbs, 1.5).tolist() == [0, 0, 2, 2, 4, 4]
    assert keep_mask(thumbs, 0.0).tolist() == [0, 1, 2, 3, 4, 5]


def test_embed_deduplicated_reuses_the_anchor_vector() -> None:
    from benchmarks.cheap_inference_bench import embed_deduplicated

    images = np.zeros((4, 16, 16, 3), np.uint8)
    images[2:] = 200
    embedder = _MeanColourEmbedder()
    vectors, kept = embed_deduplicated(embedder.embed, images, threshold=1.0)
    assert kept == 2
    assert embedder.batches == [2]
    assert np.allclose(vectors, embedder.embed(images))


def test_quality_of_the_reference_against_itself_is_perfect() -> None:
    from benchmarks.cheap_inference_bench import quality

    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, 8)).astype(np.float32)
        out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    library = [unit(5), unit(6)]
    queries = [library[1][1:4] + 0.01, library[0][:3] + 0.01]
    reference = {"library": library, "queries": queries}
    same = quality(reference, reference, truth=[1, 0])
    assert same["signature_cosine_min"] == pytest.approx(1.0, abs=1e-6)
    assert same["video_top1_agreement"] == 1.0
    assert same["video_top1_correct"] == 1.0
    assert same["frame_top1_agreement"] == 1.0
    noisy = {"library": [unit(5), unit(6)], "queries": queries}
    assert quality(reference, noisy, truth=[1, 0])["signature_cosine_min"] < 0.9
