"""README's Python example, run as printed against a real memcached (its port swapped in)."""

from __future__ import annotations

import re
from pathlib import Path

import memlock

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_tests_use_the_installed_package():
    assert "site-packages" in memlock.__file__, memlock.__file__


def test_the_readme_python_example_runs(memcached):
    text = README.read_text()
    section = text[text.index("## Python") :]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example, "README's Python section has no example"
    code = example.group(1).replace("11211", str(memcached.port)).replace('"localhost"', '"127.0.0.1"')
    exec(compile(code, "README.md", "exec"), {})
