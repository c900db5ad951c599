"""The documentation cannot rot: code blocks run, and the reference pages match the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from docs_blocks import python_blocks, run_python_blocks

import avajams.errors
from avajams import PipelineConfig
from avajams.cli import build_parser
from avajams.config import CONFIG_SECTIONS, config_reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# pages whose blocks another test file already runs (with extra checks of its own)
RUN_ELSEWHERE = {
    "custom-embedders.md": "tests/test_embedding_docs.py",
    "sampling.md": "tests/test_sampling.py",
    "library.md": "tests/test_index_docs.py",
}
# pages whose blocks run the real Inception v3 model
NEEDS_MODEL = {"quickstart.md", "README.md"}


def _pages() -> list[object]:
    params: list[object] = []
    for page in [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]:
        if page.name in RUN_ELSEWHERE or not python_blocks(page):
            continue
        marks = [pytest.mark.model, pytest.mark.slow] if page.name in NEEDS_MODEL else []
        params.append(pytest.param(page, id=page.name, marks=marks))
    return params


@pytest.mark.parametrize("page", _pages())
def test_python_blocks_run(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if page.name in NEEDS_MODEL:
        request.getfixturevalue("inception")  # build the model once per session, quietly
    run_python_blocks(page, tmp_path)


def test_every_page_is_covered() -> None:
    """A page with runnable blocks is either run here or by the test named for it."""
    for name, test in RUN_ELSEWHERE.items():
        assert (DOCS / name).is_file(), name
        assert name in (ROOT / test).read_text(encoding="utf-8"), test
    assert {"quickstart.md", "concepts.md", "configuration.md", "errors.md"} <= {
        p.values[0].name  # type: ignore[attr-defined]
        for p in _pages()
    }


def _blocks(page: Path, language: str) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def test_configuration_reference_is_generated_from_the_models() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    begin, end = "<!-- BEGIN config_reference() -->\n", "<!-- END config_reference() -->"
    assert begin in text
    assert end in text
    generated = text[text.index(begin) + len(begin) : text.index(end)]
    assert generated == config_reference(), (
        "docs/configuration.md is out of date; paste the output of "
        "python -c 'from avajams.config import config_reference; print(config_reference())'"
    )
    # and the generated text really lists every field of every section model
    for table, models in CONFIG_SECTIONS:
        assert table in PipelineConfig.model_fields
        for model in models:
            assert f"— {model.__name__}" in generated
            for field in model.model_fields:
                assert f"| `{field}` |" in generated, (model.__name__, field)


def test_configuration_examples_are_valid(tmp_path: Path) -> None:
    blocks = _blocks(DOCS / "configuration.md", "toml")
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block, encoding="utf-8")
        PipelineConfig.load(path)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_cli_reference_covers_every_command_and_option() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands = _subparsers(build_parser())
    assert {"index", "match", "labels", "mashup", "model", "demo", "info"} <= set(commands)
    for name, parser in commands.items():
        assert f"## `avajams {name}" in text, name
        nested = _subparsers(parser)
        for sub in nested:
            assert f"avajams {name} {sub}" in text, (name, sub)
        for p in [parser, *nested.values()]:
            for action in p._actions:
                for option in action.option_strings:
                    assert re.search(rf"(?<![\w-]){option}\b", text), (name, option)


def test_cli_json_schema_is_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    import json

    example = json.loads(_blocks(DOCS / "cli.md", "json")[0])
    assert set(example) == {"schema", "query", "library", "matches", "query_labels", "report"}
    match = example["matches"][0]
    assert set(match) == {
        "rank", "key", "path", "score", "signature_score", "metadata", "aligned", "labels",
        "shared_labels", "span", "box",
    }  # fmt: skip
    assert set(match["aligned"][0]) == {"query_time", "music_time", "similarity"}
    assert set(match["labels"][0]) == {"name", "probability"}
    assert set(example["query_labels"]) == {"labeller", "video"}
    assert set(match["span"]) == {
        "query_start", "query_end", "music_start", "music_end", "similarity", "frames", "speed",
    }  # fmt: skip
    assert len(match["box"]) == 4
    from avajams.cli.match import JSON_SCHEMA_VERSION

    assert example["schema"] == JSON_SCHEMA_VERSION
    assert "`schema`" in text


def test_errors_page_lists_every_error() -> None:
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    for name in avajams.errors.__all__:
        assert f"| `{name}` |" in text, name
        assert re.search(rf"(^|[─ ]){name}\b", text, re.M), f"{name} missing from the tree"


def test_readme_keeps_the_two_setup_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    bash = _blocks(ROOT / "README.md", "bash")
    venv = "python3 -m venv .venv && .venv/bin/pip install"
    assert bash[:2] == [
        f"{venv} '.[demo]' && .venv/bin/avajams demo\n",
        f"{venv} -e '.[dev]' && .venv/bin/python -m pytest\n",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert bash[1].strip() in ci
    assert "docs/" in text


def test_relative_links_resolve() -> None:
    for page in [*DOCS.glob("*.md"), ROOT / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text("utf-8")):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
