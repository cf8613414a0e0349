"""Installing the package is quiet: setuptools has nothing to warn about (license metadata, data folders)."""

import subprocess
import sys

from sft_testing import REPO_DIR


def test_building_the_package_gives_no_setuptools_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path, REPO_DIR],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stdout + result.stderr, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("minimind_hf-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "minimind_hf/demo_data/sft.jsonl" in names and "minimind_hf/tokenizer/tokenizer.json" in names
