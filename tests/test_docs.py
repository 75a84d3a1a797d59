"""The README and docs/ stay true: short, linked, and saying what the code does.

Issue 21 item 6: a README a newcomer reads in two minutes, whose first commands give numbers the
reader can check, with the reference in docs/ pages that name every spec key and dataset column.
"""

import pathlib
import re

import pytest

from fastbp import cli, columns, spec

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page):
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if re.match(r"#{1,6} ", line)}


def test_readme_fits_in_two_minutes():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; at most 200"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading '#{anchor}' in {linked.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_readme_first_command_prints_the_numbers_it_shows(capfd):
    """The README's step-table command, run as written, prints the E_total values shown below it."""
    text = README.read_text()
    command = re.search(r"^fastbp table (.*?) \| cut -d, -f23$", text, re.M)
    assert command, "the README's first command: fastbp table … | cut -d, -f23"
    shown = re.findall(r"^# (\d\.\d+)$", text[command.end() :], re.M)[:2]
    assert len(shown) == 2
    assert cli.main(["table", *command.group(1).split()]) == 0
    rows = [line.split(",") for line in capfd.readouterr().out.splitlines()]
    e_total = rows[0].index("E_total")
    assert e_total == 22  # cut -d, -f23 picks this column
    assert [row[e_total] for row in rows[1:]] == shown
    assert "E_total = 0.298371" in text and shown[0].startswith("0.298371")


def test_spec_page_names_every_key_and_init_kind():
    page = (ROOT / "docs" / "spec.md").read_text()
    from fastbp.inits import KINDS

    missing = [key for key in sorted(spec.TOP_KEYS | spec.NETWORK_KEYS) if not re.search(rf"\b{key}\b", page)]
    missing += [f'kind = "{kind}"' for kind in KINDS if f'kind = "{kind}"' not in page]
    assert not missing, f"docs/spec.md does not mention {missing}"


def test_dataset_page_lists_every_column_and_no_other():
    page = (ROOT / "docs" / "dataset.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    names = list(columns.COLUMN_NAMES)
    listed = set()
    for row in rows:
        cell = row.split("|")[1]
        shown = re.findall(r"`([^`]+)`", cell)
        if "…" in cell:  # a family: `w1_init` … `w8_init`
            first, last = names.index(shown[0]), names.index(shown[-1])
            listed.update(names[first : last + 1])
        else:
            listed.update(shown)
    assert listed == set(names), (
        f"missing: {sorted(set(names) - listed)}; not columns: {sorted(listed - set(names))}"
    )
