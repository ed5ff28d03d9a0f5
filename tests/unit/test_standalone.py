"""The repository stands alone: nothing points outside the clone, and the test data is in data/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from genomebus import demo
from tests.data import DATA, NEEDED, REPO

# Built from parts so that this file does not match itself.
SHARED = "shared"
FORBIDDEN = ("../" + SHARED, "/" + SHARED + "/data", "/" + SHARED + "/specs")

# Outside a git checkout (an unpacked archive), walk the tree but leave out what .gitignore leaves out.
IGNORED_DIRS = {".git", ".venv", ".genomebus", "__pycache__", ".pytest_cache", "build", "schemas-export"}
IGNORED_PATHS = ("bench/results/", "bench/.cache/")


def project_files() -> list[Path]:
    """The tracked files of the repository (git ls-files), or every file not ignored outside git."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        files = []
        for path in REPO.rglob("*"):
            relative = path.relative_to(REPO)
            if (path.is_file() and not IGNORED_DIRS.intersection(relative.parts)
                    and not any(part.endswith(".egg-info") for part in relative.parts)
                    and not relative.as_posix().startswith(IGNORED_PATHS)):
                files.append(path)
        return files
    return [REPO / name for name in listed.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file (a NUL byte, or not UTF-8: BAM, CRAM, bgzip, keys, …)."""
    try:
        content = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):  # tracked but deleted in the work tree
        return None
    if b"\0" in content[:8192]:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_file_points_outside_the_repository() -> None:
    files = project_files()
    assert any(path.name == "README.md" for path in files), f"no project files found under {REPO}"
    offending = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(needle in line for needle in FORBIDDEN):
                offending.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offending, "references to a folder beside the checkout:\n" + "\n".join(offending)


def test_the_files_the_tests_need_are_in_data() -> None:
    missing = [name for name in NEEDED if not (DATA / name).is_file()]
    assert not missing, f"missing from {DATA}: {', '.join(missing)}"


# A file under data/ as test modules spell it: DATA / <folder> / <name.ext>, or a constant <folder>/<name.ext> in
# quotes (a name has an extension: "reads/service-info" is an htsget path, not a file).
DATA_REFERENCE = re.compile(r'"(reads|variants|crypt4gh)"\s*/\s*"([^"]+\.[^"]+)"|"((?:reads|variants|crypt4gh)/[^"/]+\.[^"]+)"')


def test_every_data_file_a_test_names_is_listed_and_present() -> None:
    named = set()
    for module in (REPO / "tests").rglob("*.py"):
        if module.resolve() == Path(__file__).resolve():
            continue
        for match in DATA_REFERENCE.finditer(module.read_text()):
            named.add(match.group(3) or f"{match.group(1)}/{match.group(2)}")
    assert named, "found no data references in tests/: the pattern no longer matches how tests name their files"
    assert not named - set(NEEDED), f"add to tests/data.py NEEDED: {sorted(named - set(NEEDED))}"
    assert all((DATA / name).is_file() for name in named)


def test_the_demo_reads_the_repositorys_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GENOMEBUS_DEMO_DATA", raising=False)
    assert demo.demo_data() == DATA
    missing = [str(path) for path, _ in demo.demo_files(demo.demo_data()) if not path.is_file()]
    assert not missing, f"the demo's files are missing: {missing}"
    assert demo.EXAMPLE.is_file(), f"the demo's example metadata is missing: {demo.EXAMPLE}"

    monkeypatch.setenv("GENOMEBUS_DEMO_DATA", str(tmp_path))
    assert demo.demo_data() == tmp_path
