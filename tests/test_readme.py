"""The README is the front door: short, exactly two set-up commands, the second the one CI runs,
and every link it gives leads to a file of the repository."""

import re

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_is_short_with_exactly_two_setup_commands_and_ci_runs_the_test_command():
    assert len(README.splitlines()) <= 160
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert commands[0].startswith("pip install -e . && kk ")
    assert commands[1] in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_links_lead_to_files_of_the_repository():
    links = re.findall(r"\]\(([^)#\s]+)\)", README)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert len(local) >= 10
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing
