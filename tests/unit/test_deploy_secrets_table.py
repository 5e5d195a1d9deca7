"""The README's table of secrets to set after `sam deploy` says what the template creates: one row
per secret output, with the variable the output's and the secret's descriptions name."""

from __future__ import annotations

import re
from pathlib import Path

from timeline_bridge_tools.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\(([A-Z][A-Z0-9_]+)")


def readme_rows() -> dict[str, str]:
    """`stack output` → `variable` from the README's secrets table."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].endswith("Arn") and cells[1].isupper():
            rows[cells[0]] = cells[1]
    return rows


def template_secrets() -> dict[str, str]:
    """`stack output` → the variable its description names, for every output naming a secret."""
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    found = {}
    for name, output in template["Outputs"].items():
        ref = output["Value"].get("Ref") if isinstance(output["Value"], dict) else None
        if ref in resources and resources[ref]["Type"] == "AWS::SecretsManager::Secret":
            (variable,) = VARIABLE.findall(output["Description"])
            assert variable in resources[ref]["Properties"]["Description"], name
            found[name] = variable
    return found


def test_readme_lists_every_secret_output_with_its_variable_when_the_template_creates_secrets() -> None:
    secrets = template_secrets()

    assert len(secrets) >= 9
    assert readme_rows() == secrets


def test_applied_shop_id_says_it_is_required_when_a_shipped_mapping_targets_applied() -> None:
    shipped = [p for p in (ROOT / "mappings").glob("*.yaml") if "\ntarget: applied" in p.read_text()]
    description = load_template(ROOT / "template.yaml")["Parameters"]["AppliedShopId"]["Description"]

    assert shipped
    assert "Required when a mapping targets" in description
