"""What `sam build` warns about, ruled out in the template and the function folders: a layer built
for another architecture than it declares, a function folder without requirements.txt."""

from __future__ import annotations

from pathlib import Path

from timeline_bridge_tools.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = load_template(ROOT / "template.yaml")["Resources"]


def test_every_makefile_layer_builds_for_the_architectures_it_declares_when_sam_builds_it() -> None:
    layers = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::LayerVersion"}

    assert {"CoreLayer", "MappingsLayer"} <= set(layers)
    for name, layer in layers.items():
        built_for = layer["Metadata"]["BuildArchitecture"]
        assert [built_for] == layer["Properties"]["CompatibleArchitectures"], name


def test_every_function_folder_has_a_requirements_file_when_sam_builds_it() -> None:
    folders = {
        r["Properties"]["CodeUri"] for r in RESOURCES.values() if r["Type"] == "AWS::Serverless::Function"
    }

    assert len(folders) >= 6
    assert [f for f in sorted(folders) if not (ROOT / f / "requirements.txt").is_file()] == []
