"""The Embedder protocol, video signatures, FakeEmbedder, check_embedder and the registry.

Nothing here needs the Inception model; see test_model_inception.py for that.
"""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import avajams
from avajams.embedding import (
    Embedder,
    available_embedders,
    l2_normalize,
    load_embedder,
    refresh_plugins,
    video_signature,
)
from avajams.errors import ConfigError, EmbedderError
from avajams.testing import FakeEmbedder, check_embedder


def _photos() -> dict[str, npt.NDArray[np.uint8]]:
    from skimage import data

    return {n: getattr(data, n)() for n in ("chelsea", "coffee", "astronaut", "rocket")}


# --- video_signature ----------------------------------------------------------------------


def test_signature_is_normalised_mean_of_normalised_rows() -> None:
    v = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 10.0]], np.float32)
    expected = np.array([0.6, 0.8, 1.0]) / np.linalg.norm([0.6, 0.8, 1.0])
    np.testing.assert_allclose(video_signature(v), expected, rtol=1e-6)
    assert video_signature(v).dtype == np.float32


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 8)),
        elements=st.floats(-1, 1, width=32),
    ),
    st.floats(0.1, 100),
)
def test_signature_ignores_frame_norms(vectors: npt.NDArray[np.float32], scale: float) -> None:
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    vectors = vectors[norms > 1e-3]
    if len(vectors) == 0 or np.linalg.norm(l2_normalize(vectors).sum(0)) < 1e-3:
        return
    scaled = vectors * np.linspace(scale, 1.0, len(vectors), dtype=np.float32)[:, None]
    a, b = video_signature(vectors), video_signature(scaled)
    assert abs(np.linalg.norm(a) - 1) < 1e-5
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_signature_median_resists_an_outlier_frame() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal(16)
    frames = base + 0.05 * rng.standard_normal((9, 16))
    frames[:3] = rng.standard_normal(16)  # three odd frames (titles, a black frame...)
    mean_sig = video_signature(frames, "mean")
    median_sig = video_signature(frames, "median")
    unit = base / np.linalg.norm(base)
    assert float(median_sig @ unit) > 0.9
    assert float(median_sig @ unit) > float(mean_sig @ unit) + 0.02


@pytest.mark.parametrize(
    ("vectors", "method", "message"),
    [
        (np.zeros((0, 4)), "mean", "N >= 1"),
        (np.ones(4), "mean", "shape"),
        (np.array([[1.0, np.nan]]), "mean", "NaN"),
        (np.array([[1.0, 0.0], [-1.0, 0.0]]), "mean", "cancel"),
        (np.zeros((2, 3)), "mean", "cancel"),
        (np.ones((2, 3)), "max", "unknown signature method"),
    ],
)
def test_signature_rejects_bad_input(vectors: Any, method: Any, message: str) -> None:
    with pytest.raises(EmbedderError, match=message):
        video_signature(vectors, method)


# --- FakeEmbedder and check_embedder --------------------------------------------------------


@pytest.mark.parametrize(
    "embedder",
    [FakeEmbedder(), FakeEmbedder(dim=7, seed=3), FakeEmbedder(32, input_size=(299, 299))],
    ids=repr,
)
def test_fake_embedder_meets_the_contract(embedder: FakeEmbedder) -> None:
    check_embedder(embedder)
    assert isinstance(embedder, Embedder)


def test_fake_embedder_identity_and_determinism() -> None:
    images = np.random.default_rng(1).integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    assert FakeEmbedder(16, seed=2).id == "fake-16-2"
    np.testing.assert_array_equal(
        FakeEmbedder(16, seed=2).embed(images), FakeEmbedder(16, seed=2).embed(images)
    )
    assert not np.allclose(FakeEmbedder(16, seed=2).embed(images), FakeEmbedder(16).embed(images))
    tiny = FakeEmbedder(8).embed(images[:, :3, :2])  # smaller than its 8x8 grid
    assert np.all(np.isfinite(tiny))


def test_fake_embedder_similar_images_are_near() -> None:
    photos = _photos()
    emb = FakeEmbedder(64)
    originals = np.stack([_resize(p, (120, 90)) for p in photos.values()])
    rng = np.random.default_rng(5)
    noisy = np.clip(originals + rng.normal(0, 12, originals.shape), 0, 255).astype(np.uint8)
    sims = emb.embed(noisy) @ emb.embed(originals).T
    assert list(sims.argmax(axis=1)) == [0, 1, 2, 3]
    assert np.all(np.diag(sims) > 0.99)


def test_fake_embedder_rejects_bad_options() -> None:
    with pytest.raises(ConfigError):
        FakeEmbedder(0)
    with pytest.raises(ConfigError):
        FakeEmbedder(8, grid=0)


class _Broken(FakeEmbedder):
    def __init__(self, flaw: str) -> None:
        super().__init__(8)
        self.flaw = flaw
        self.calls = 0

    def embed(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        self.calls += 1
        if self.flaw == "accepts floats" and isinstance(images, np.ndarray):
            images = np.clip(images, 0, 255).astype(np.uint8)
        v = super().embed(images)
        if self.flaw == "float64":
            return v.astype(np.float64)
        if self.flaw == "not unit":
            return v * 2
        if self.flaw == "random":
            return l2_normalize(v + np.float32(1e-2 * self.calls))
        if self.flaw == "batch dependent" and len(v) > 1:
            return l2_normalize(v + v.mean(axis=0))
        if self.flaw == "wrong dim":
            return v[:, :4]
        return v


@pytest.mark.parametrize(
    ("flaw", "message"),
    [
        ("float64", "float32"),
        ("not unit", "unit length"),
        ("random", "deterministic"),
        ("batch dependent", "one-by-one"),
        ("wrong dim", "expected"),
        ("accepts floats", "accepted float32 images"),
    ],
)
def test_check_embedder_catches_contract_violations(flaw: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_embedder(_Broken(flaw))


def test_check_embedder_rejects_non_embedders() -> None:
    with pytest.raises(AssertionError, match="lacks the Embedder members"):
        check_embedder(object())


# --- registry -------------------------------------------------------------------------------


class ColourMean:
    """A tiny third-party style embedder used by the registry tests."""

    input_size = None

    def __init__(self, dim: int = 3) -> None:
        self.dim = dim
        self.id = f"colour-mean-{dim}"

    def embed(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        from avajams.embedding._protocol import check_images

        images = check_images(images)
        means = images.reshape(len(images), -1, 3).mean(axis=1) + 1.0
        return l2_normalize(np.tile(means, (1, self.dim))[:, : self.dim])


def test_load_embedder_accepts_instance_class_factory_and_import_path() -> None:
    inst = FakeEmbedder(8)
    assert load_embedder(inst) is inst
    assert load_embedder(ColourMean, dim=5).dim == 5
    assert load_embedder(lambda: ColourMean(2)).id == "colour-mean-2"
    emb = load_embedder(f"{__name__}:ColourMean", dim=4)
    assert isinstance(emb, ColourMean)
    assert emb.dim == 4
    assert load_embedder("avajams.testing:FakeEmbedder", dim=9).id == "fake-9-0"


def test_load_embedder_errors_name_the_problem() -> None:
    with pytest.raises(EmbedderError, match=r"unknown embedder 'nope'; available: inception_v3"):
        load_embedder("nope")
    with pytest.raises(ConfigError, match="instance"):
        load_embedder(FakeEmbedder(), dim=3)
    with pytest.raises(ConfigError, match="invalid options"):
        load_embedder(ColourMean, colour="red")
    with pytest.raises(EmbedderError, match="not an embedder"):
        load_embedder(lambda: object())
    with pytest.raises(EmbedderError, match="cannot make an embedder"):
        load_embedder(42)
    with pytest.raises(EmbedderError, match="cannot import"):
        load_embedder("no_such_module_xyz:Thing")


def test_facade_exports() -> None:
    assert avajams.load_embedder is load_embedder
    assert avajams.video_signature is video_signature
    assert avajams.Embedder is Embedder


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path where tests install fake distributions with entry points."""
    monkeypatch.syspath_prepend(str(tmp_path))
    refresh_plugins()
    yield tmp_path
    refresh_plugins()
    for name in [m for m in sys.modules if m.startswith("avajams_plugin_")]:
        del sys.modules[name]


def _install_plugin(root: Path, dist: str, module_source: str, entry_points: str) -> None:
    (root / f"{dist}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[avajams.embedders]\n" + entry_points)


def test_entry_point_plugins_load_by_name(plugin_path: Path) -> None:
    _install_plugin(
        plugin_path,
        "avajams_plugin_good",
        """
        from avajams.testing import FakeEmbedder

        class Tiny(FakeEmbedder):
            def __init__(self, dim=12):
                super().__init__(dim, seed=7)
        """,
        "tiny = avajams_plugin_good:Tiny\n",
    )
    assert "tiny" in available_embedders()
    emb = load_embedder("tiny", dim=6)
    assert emb.id == "fake-6-7"
    check_embedder(emb)


def test_broken_plugin_warns_when_listed_and_raises_when_asked_for(plugin_path: Path) -> None:
    _install_plugin(
        plugin_path,
        "avajams_plugin_broken",
        "raise ImportError('needs libfoo')\n",
        "broken = avajams_plugin_broken:Thing\n",
    )
    with pytest.warns(RuntimeWarning, match="'broken'.*failed to load.*libfoo"):
        names = available_embedders()
    assert "broken" not in names
    assert "inception_v3" in names
    with pytest.raises(EmbedderError, match=r"'broken'.*libfoo"):
        load_embedder("broken")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(EmbedderError, match="available: inception_v3"):
            load_embedder("missing")


def _resize(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
