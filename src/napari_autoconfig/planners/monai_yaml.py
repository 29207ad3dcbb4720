"""The two YAML files of MONAI Auto3DSeg's DataAnalyzer: their names and their layout.

MONAI writes ``FILE.yaml`` (``stats_summary``, and ``stats_by_cases: []``) and
``FILE_by_case.yaml`` (the same summary, then every case) with PyYAML's ``safe_dump(...,
default_flow_style=None, sort_keys=False)``: block mappings, innermost collections in flow style,
keys in the order they were made. So are ours, with PyYAML's C emitter where libyaml is built in
(the same text as its Python one, several times faster); a few comment lines on top say who wrote
the file and how it relates to MONAI's.
"""

from __future__ import annotations

from pathlib import Path


def by_case_path(path: str | Path) -> Path:
    """MONAI's name of the by-case file: ``.yaml`` replaced by ``_by_case.yaml`` (everywhere in
    the path, as ``str.replace``), else ``.by_case.yaml`` appended."""
    text = str(path)
    by_case = text.replace(".yaml", "_by_case.yaml")
    return Path(by_case if by_case != text else text + ".by_case.yaml")


def render(document: dict, comments: list[str]) -> str:
    """``document`` as MONAI lays it out, after ``comments`` (one ``#`` line each)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(document, Dumper=dumper, default_flow_style=None, sort_keys=False)
    header = "".join(f"# {line}".rstrip() + "\n" for line in comments)
    return header + text
