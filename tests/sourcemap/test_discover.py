"""Finding files and their maps."""

from __future__ import annotations

from pathlib import Path

import pytest

from trapline.sourcemap.discover import discover, javascript_files, locate_map, source_mapping_url


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize(
    ("source", "url"),
    [
        (b"x()\n//# sourceMappingURL=a.js.map\n", "a.js.map"),
        (b"x()\n//@ sourceMappingURL=old.map", "old.map"),
        (b"x()\n//# sourceMappingURL=first.map\ny()\n//# sourceMappingURL=last.map\r\n", "last.map"),
        (b'var s="//# sourceMappingURL="+u;\n', None),  # inside a string, not a comment
        (b"x()", None),
    ],
)
def test_source_mapping_url_is_the_last_comment(source: bytes, url: str | None):
    assert source_mapping_url(source) == url


def test_maps_are_found_by_comment_then_beside_the_file(tmp_path: Path):
    write(
        tmp_path,
        {
            "app.js": "x()\n//# sourceMappingURL=maps/app%20v2.js.map?v=3",
            "maps/app v2.js.map": "{}",
            "vendor.mjs": "x()",
            "vendor.mjs.map": "{}",
            "lost.cjs": "x()\n//# sourceMappingURL=gone.map",
            "inline.js": "x()\n//# sourceMappingURL=data:application/json;base64,e30=",
            "plain.js": "x()",
            "style.css": "a{}",
            "style.css.map": "{}",
        },
    )
    found = {candidate.source.name: candidate for candidate in discover(tmp_path)}
    assert sorted(found) == ["app.js", "inline.js", "lost.cjs", "plain.js", "vendor.mjs"]
    assert found["app.js"].source_map == tmp_path / "maps/app v2.js.map"
    assert found["vendor.mjs"].source_map == tmp_path / "vendor.mjs.map"
    assert found["lost.cjs"].source_map is None and "gone.map was not found" in str(found["lost.cjs"].note)
    assert found["inline.js"].source_map is None and "inline" in str(found["inline.js"].note)
    assert found["plain.js"].source_map is None and found["plain.js"].note == "no source map"


def test_public_path_prefix_makes_absolute_map_urls_local(tmp_path: Path):
    write(tmp_path, {"static/js/app.js": "x()", "static/js/app.map": "{}"})
    source = b"x()\n//# sourceMappingURL=https://cdn.example.com/static/js/app.map"
    path = tmp_path / "static/js/app.js"
    assert locate_map(path, source, tmp_path)[0] is None
    assert locate_map(path, source, tmp_path, "https://cdn.example.com/")[0] == tmp_path / "static/js/app.map"
    assert locate_map(path, source, tmp_path, "https://cdn.example.com/static/js/")[0] == tmp_path / "static/js/app.map"
    rooted = b"x()\n//# sourceMappingURL=/static/js/app.map"
    assert locate_map(path, rooted, tmp_path)[0] == tmp_path / "static/js/app.map"


def test_ignore_globs_skip_files_and_folders(tmp_path: Path):
    write(tmp_path, {"a.js": "", "b.test.js": "", "vendor/c.js": "", "deep/vendor/d.js": "", "deep/e.js": ""})
    names = [path.relative_to(tmp_path).as_posix() for path in javascript_files(tmp_path, ["*.test.js", "**/vendor"])]
    assert names == ["a.js", "deep/e.js"]
