"""PipelineConfig: defaults, strictness, discriminated kinds, import strings, TOML/JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avajams import ConfigError, PipelineConfig
from avajams.pipeline import (
    CustomConfig,
    CustomEmbedderConfig,
    CustomMashupConfig,
    CustomSamplerConfig,
    FrameSamplerConfig,
    InceptionConfig,
    LibraryConfig,
    MoviePyMashupConfig,
    RegisteredEmbedderConfig,
    import_object,
)


def test_defaults_need_no_configuration() -> None:
    config = PipelineConfig()
    assert isinstance(config.sampler, FrameSamplerConfig)
    assert isinstance(config.embedder, InceptionConfig)
    assert isinstance(config.library, LibraryConfig)
    assert isinstance(config.mashup, MoviePyMashupConfig)
    assert config.sampler.fps == 1.0
    assert config.sampler.size == 299
    assert config.embedder.kind == "inception_v3"
    assert config.mashup.segment_seconds == 2.0
    assert config == PipelineConfig.model_validate({})


def test_frozen_and_extra_forbidden() -> None:
    config = PipelineConfig()
    assert isinstance(config.sampler, FrameSamplerConfig)
    with pytest.raises(pydantic.ValidationError):
        config.sampler = FrameSamplerConfig(fps=2)
    with pytest.raises(pydantic.ValidationError):
        config.sampler.fps = 3.0
    with pytest.raises(pydantic.ValidationError, match="extra"):
        PipelineConfig.model_validate({"sampler": {"fsp": 2}})
    with pytest.raises(pydantic.ValidationError, match="extra"):
        PipelineConfig.model_validate({"samplr": {}})
    with pytest.raises(pydantic.ValidationError):
        PipelineConfig.model_validate({"sampler": {"fps": 0}})


def test_kind_discriminates_builtin_and_custom_backends() -> None:
    config = PipelineConfig.model_validate(
        {
            "sampler": {"kind": "mypkg.sampling:MySampler", "options": {"step": 2}},
            "embedder": {"kind": "avajams.testing:FakeEmbedder", "options": {"dim": 32}},
            "mashup": {"kind": "mypkg.render:Renderer", "segment_seconds": 1.5},
        }
    )
    assert isinstance(config.sampler, CustomSamplerConfig)
    assert config.sampler.options == {"step": 2}
    assert isinstance(config.embedder, CustomEmbedderConfig)
    assert isinstance(config.mashup, CustomMashupConfig)
    assert config.mashup.segment_seconds == 1.5
    named = PipelineConfig.model_validate({"embedder": {"kind": "clip", "options": {"x": 1}}})
    assert isinstance(named.embedder, RegisteredEmbedderConfig)
    # a built-in kind takes only its own fields
    with pytest.raises(pydantic.ValidationError):
        PipelineConfig.model_validate({"sampler": {"kind": "pyav", "options": {}}})
    # not an import string, not a builtin
    with pytest.raises(pydantic.ValidationError):
        PipelineConfig.model_validate({"sampler": {"kind": "opencv"}})
    with pytest.raises(pydantic.ValidationError):
        PipelineConfig.model_validate({"mashup": {"kind": "a b:c"}})


def test_round_trips_through_json() -> None:
    config = PipelineConfig.model_validate(
        {
            "sampler": {"fps": 0.5, "size": [320, 240], "fit": "letterbox"},
            "embedder": {"kind": "avajams.testing:FakeEmbedder", "options": {"dim": 16}},
            "library": {"directory": "/tmp/lib", "backend": "exact"},
        }
    )
    again = PipelineConfig.model_validate_json(config.model_dump_json())
    assert again == config
    assert again.sampler.size == (320, 240)  # type: ignore[union-attr]


def test_load_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "avajams.toml"
    toml.write_text(
        """
[sampler]
fps = 2.0
workers = 2

[embedder]
kind = "avajams.testing:FakeEmbedder"
options = { dim = 32, seed = 3 }
batch_size = 8

[library]
directory = "lib"

[mashup]
segment_seconds = 1.0
fit = "crop"
""",
        encoding="utf-8",
    )
    config = PipelineConfig.load(toml)
    assert config.sampler.fps == 2.0  # type: ignore[union-attr]
    assert config.embedder.options == {"dim": 32, "seed": 3}  # type: ignore[union-attr]
    # a relative library directory is relative to the configuration file
    assert config.library.directory == tmp_path / "lib"
    assert config.mashup.fit == "crop"  # type: ignore[union-attr]
    as_json = tmp_path / "avajams.json"
    as_json.write_text(json.dumps({"sampler": {"fps": 2.0, "workers": 2}}), encoding="utf-8")
    assert PipelineConfig.load(as_json).sampler.fps == 2.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "[sampler\nfps=1", "not valid TOML"),
        ("bad.json", "{", "not valid JSON"),
        ("typo.toml", "[sampler]\nfsp = 2\n", r"sampler\.pyav\.fsp"),
        ("conf.yaml", "sampler: {}", ".toml or .json"),
        ("list.json", "[1, 2]", "top level"),
    ],
)
def test_load_errors_are_config_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        PipelineConfig.load(path)
    assert name in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        PipelineConfig.load(tmp_path / "nope.toml")


def test_import_object_errors() -> None:
    assert import_object("pathlib:Path") is Path
    assert import_object("os.path:join").__name__ == "join"
    with pytest.raises(ConfigError, match="cannot import module"):
        import_object("no_such_module_xyz:Thing")
    with pytest.raises(ConfigError, match="no attribute"):
        import_object("pathlib:NoSuchThing")
    with pytest.raises(ConfigError, match="import string"):
        import_object("pathlib")
    with pytest.raises(ConfigError, match="not a class or function"):
        import_object("os:sep")


def test_custom_config_builds_with_options() -> None:
    from avajams.testing import FakeEmbedder

    built = CustomConfig(kind="avajams.testing:FakeEmbedder", options={"dim": 8}).build()
    assert isinstance(built, FakeEmbedder)
    assert built.dim == 8
    with pytest.raises(ConfigError, match="does not accept"):
        CustomConfig(kind="avajams.testing:FakeEmbedder", options={"colour": 1}).build()


def test_library_directory_default_and_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    assert LibraryConfig().resolved_directory() == tmp_path / "library"
    assert LibraryConfig(directory=tmp_path / "x").resolved_directory() == tmp_path / "x"
    assert PipelineConfig(library=str(tmp_path / "y")).library.directory == tmp_path / "y"  # type: ignore[arg-type]


def test_config_holds_no_live_objects() -> None:
    """A config pickles/serialises as plain data: no files, sessions or models inside."""
    import pickle

    config = PipelineConfig()
    assert pickle.loads(pickle.dumps(config)) == config
    json.dumps(config.model_dump(mode="json"))


def test_builtin_sections_match_the_backends_they_build() -> None:
    """The default sections' options are accepted by the objects they configure."""
    import inspect

    from avajams.embedding import OnnxEmbedder
    from avajams.mashup import Mashup
    from avajams.sampling import FrameSampler

    options = InceptionConfig(threads=2, batch_size=4).build_options()
    inspect.signature(OnnxEmbedder.inception_v3).bind(**options)
    sampler = FrameSamplerConfig(fps=2.0, size=(64, 48), fit="crop", max_frames=9).build()
    assert isinstance(sampler, FrameSampler)
    assert sampler.fps == 2.0
    assert sampler.size == (64, 48)
    assert sampler.max_frames == 9
    mashup = MoviePyMashupConfig(segment_seconds=1.5, user_end="hold", fps=12).build()
    assert isinstance(mashup, Mashup)
    assert mashup.segment_seconds == 1.5
    assert mashup.user_end == "hold"
    assert mashup.fps == 12


@given(
    fps=st.floats(min_value=0.01, max_value=60, allow_nan=False),
    size=st.one_of(
        st.none(),
        st.integers(1, 4096),
        st.tuples(st.integers(1, 4096), st.integers(1, 4096)),
    ),
    fit=st.sampled_from(["stretch", "crop", "letterbox"]),
    batch=st.integers(1, 512),
    segment=st.floats(min_value=0.05, max_value=60, allow_nan=False),
    directory=st.one_of(st.none(), st.just("/data/lib")),
)
def test_any_valid_config_round_trips(
    fps: float,
    size: int | tuple[int, int] | None,
    fit: str,
    batch: int,
    segment: float,
    directory: str | None,
) -> None:
    config = PipelineConfig.model_validate(
        {
            "sampler": {"fps": fps, "size": size, "fit": fit},
            "embedder": {"batch_size": batch},
            "library": {"directory": directory},
            "mashup": {"segment_seconds": segment},
        }
    )
    assert PipelineConfig.model_validate_json(config.model_dump_json()) == config
    assert PipelineConfig.from_mapping(config.model_dump(mode="json")) == config


@pytest.mark.parametrize("section", ["sampler", "embedder", "library", "mashup"])
@pytest.mark.parametrize("value", ["fast", [1, 2], 3])
def test_a_section_that_is_not_a_table_is_a_config_error(section: str, value: object) -> None:
    if section == "library" and isinstance(value, str):
        # a plain string is the library's directory (the documented shorthand)
        assert PipelineConfig.from_mapping({section: value}).library.directory is not None
        return
    with pytest.raises(ConfigError, match=section):
        PipelineConfig.from_mapping({section: value})


@pytest.mark.parametrize(
    ("section", "kind", "protocol"),
    [
        ("sampler", "avajams.testing:FakeEmbedder", "Sampler"),
        ("embedder", "os:getcwd", "Embedder"),
    ],
)
def test_custom_backend_must_meet_its_protocol(section: str, kind: str, protocol: str) -> None:
    from avajams import Pipeline

    pipe = Pipeline(PipelineConfig.from_mapping({section: {"kind": kind}}))
    with pytest.raises(ConfigError, match=f"not an avajams {protocol}"):
        _ = pipe.sampler if section == "sampler" else pipe.embedder


def test_efficientnet_section_from_toml(tmp_path: Path) -> None:
    import inspect

    from avajams.embedding import OnnxEmbedder
    from avajams.pipeline import EfficientNetConfig

    path = tmp_path / "avajams.toml"
    path.write_text(
        '[embedder]\nkind = "efficientnet_lite0"\nbatch_size = 32\nthreads = 1\n'
        'providers = ["CPUExecutionProvider"]\n'
    )
    config = PipelineConfig.load(path)
    assert isinstance(config.embedder, EfficientNetConfig)
    assert config.embedder.batch_size == 32
    inspect.signature(OnnxEmbedder.efficientnet_lite0).bind(**config.embedder.build_options())
    with pytest.raises(ConfigError, match="precision"):
        PipelineConfig.from_mapping(
            {"embedder": {"kind": "efficientnet_lite0", "precision": "int8"}}
        )
