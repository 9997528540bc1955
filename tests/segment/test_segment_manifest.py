"""Model manifests: validation with file:line, checksum, IR version and opset at load."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import conv_model, write_model

from daemon.segment import ModelError, load_manifest, load_model
from daemon.segment.onnx_header import probe_model, read_header, runtime_limits


def test_a_valid_folder_loads(tmp_path: Path) -> None:
    model = load_model(write_model(tmp_path / "m", conv_model()), providers="cpu")
    assert model.manifest.name == "tiny"
    assert model.provider == "CPUExecutionProvider"
    assert model.manifest.segment_labels()[0].type.meaning == "Neoplasm, Metastatic"


def test_unknown_key_names_file_key_and_line(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", conv_model())
    text = (folder / "model.yaml").read_text().replace("  patch_size:", "  patch_sise: [8, 8, 8]\n  patch_size:")
    (folder / "model.yaml").write_text(text)
    line = text.splitlines().index("  patch_sise: [8, 8, 8]") + 1
    with pytest.raises(ModelError) as err:
        load_manifest(folder)
    assert f"model.yaml:{line}: input.patch_sise: unknown key" in str(err.value)


def test_bad_values_are_named(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", conv_model(), **{"input.orientation": "LLS", "sha256": "xyz"})
    with pytest.raises(ModelError) as err:
        load_manifest(folder)
    msg = str(err.value)
    assert "model.yaml:" in msg and "sha256" in msg and "input" in msg and "LLS" in msg


def test_sha256_mismatch_is_refused(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", conv_model())
    (folder / "model.onnx").write_bytes(conv_model(scale=2.0))
    with pytest.raises(ModelError, match=r"model\.yaml:\d+: sha256: model\.onnx has sha256 [0-9a-f]{64}, the manifest says"):
        load_model(folder, providers="cpu")


def test_ir_version_too_new_is_refused(tmp_path: Path) -> None:
    too_new = runtime_limits().max_ir_version + 1
    folder = write_model(tmp_path / "m", conv_model(ir_version=too_new))
    with pytest.raises(ModelError, match=f"IR version {too_new} is newer than this ONNX Runtime"):
        load_model(folder, providers="cpu")


def test_opset_too_new_is_refused(tmp_path: Path) -> None:
    too_new = runtime_limits().max_opset + 1
    folder = write_model(tmp_path / "m", conv_model(opset=too_new))
    with pytest.raises(ModelError, match=f"opset {too_new} is newer"):
        load_model(folder, providers="cpu")


def test_header_reader_agrees_with_onnx(tmp_path: Path) -> None:
    import onnx

    path = tmp_path / "p.onnx"
    path.write_bytes(probe_model(9, 15))
    header = read_header(path)
    assert (header.ir_version, header.default_opset) == (9, 15)
    proto = onnx.load(str(path))
    assert proto.ir_version == 9 and proto.opset_import[0].version == 15
    limits = runtime_limits()
    assert limits.max_ir_version >= 8 and limits.max_opset >= 17  # what the demo model needs


def test_not_an_onnx_file(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", b"\xff\xff\xff\xff not onnx")
    with pytest.raises(ModelError, match="model.onnx"):
        load_model(folder, providers="cpu")


def test_missing_file_is_named(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", conv_model())
    (folder / "model.onnx").unlink()
    with pytest.raises(ModelError, match=r"model\.yaml:\d+: file: .* does not exist"):
        load_model(folder, providers="cpu")


def test_a_label_without_role_is_refused_with_file_and_line(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", conv_model())
    text = (folder / "model.yaml").read_text()
    assert text.count("    role: lesion\n") == 1
    (folder / "model.yaml").write_text(text.replace("    role: lesion\n", ""))
    line = text.splitlines().index("  - value: 1") + 1  # the label's first line (its missing key has none)
    with pytest.raises(ModelError) as err:
        load_manifest(folder)
    assert f"model.yaml:{line}: output.labels.0.role: Field required" in str(err.value)


def test_role_and_node_are_checked(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", conv_model())
    text = (folder / "model.yaml").read_text()
    (folder / "model.yaml").write_text(text.replace("role: lesion", "role: tumour"))
    line = text.splitlines().index("    role: lesion") + 1
    with pytest.raises(ModelError, match=rf"model\.yaml:{line}: output\.labels\.0\.role: Input should be 'lesion' or 'organ'"):
        load_manifest(folder)
    (folder / "model.yaml").write_text(text.replace("role: lesion", "role: organ\n    node: true"))
    with pytest.raises(ModelError, match=r"model\.yaml:\d+: output\.labels\.0: .*node: true is for a lesion label"):
        load_manifest(folder)
    (folder / "model.yaml").write_text(text.replace("role: lesion", "role: lesion\n    node: true"))
    label = load_manifest(folder)[0].labels[0]
    assert (label.role, label.node) == ("lesion", True)
    (folder / "model.yaml").write_text(text)
    assert load_manifest(folder)[0].labels[0].node is False  # the default


def test_the_demo_manifests_give_every_label_a_role(request: pytest.FixtureRequest) -> None:
    root = Path(str(request.config.rootpath)) / "models"
    for folder in sorted(p.parent for p in root.glob("*/model.yaml")):
        manifest, _ = load_manifest(folder)
        assert all(lab.role in ("lesion", "organ") for lab in manifest.labels), folder
        assert any(lab.role == "lesion" for lab in manifest.labels), folder
