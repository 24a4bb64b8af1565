"""The remembered Hudi jar list: used only when it names jars that are all still there."""

from __future__ import annotations

import json
from pathlib import Path

from glue.local_spark import resolved_jars, resolved_jars_path


def test_a_complete_jar_list_is_used_and_an_incomplete_one_is_not(tmp_path: Path) -> None:
    assert resolved_jars("0.15", tmp_path) == []  # nothing remembered yet
    jars = [tmp_path / "jars" / "a.jar", tmp_path / "jars" / "b.jar"]
    jars[0].parent.mkdir()
    for jar in jars:
        jar.write_bytes(b"PK")
    path = resolved_jars_path("0.15", tmp_path)
    assert path == tmp_path / "mystore-hudi-0.15-jars.json"
    path.write_text(json.dumps([str(j) for j in jars]))
    assert resolved_jars("0.15", tmp_path) == [str(j) for j in jars]
    assert resolved_jars("1.0", tmp_path) == []  # another Hudi version has its own list
    jars[1].unlink()  # e.g. the Ivy cache was cleaned: resolve again instead
    assert resolved_jars("0.15", tmp_path) == []
    path.write_text("not json")
    assert resolved_jars("0.15", tmp_path) == []
