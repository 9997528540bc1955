"""split_roles: lesion labels stay in the mask, organ labels become named boolean arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import channels_model, conv_model, volume, write_model

from daemon.segment import ModelError, load_manifest, load_model, split_roles
from daemon.volume import LesionMask

_CODE = {"value": "49755003", "scheme": "SCT", "meaning": "Morphologically Altered Structure"}


def _label(value: int, name: str, role: str, **extra: object) -> dict[str, object]:
    return {"value": value, "channel": value, "name": name, "role": role, "category": _CODE, "type": _CODE, **extra}


def _manifest(tmp_path: Path):  # type: ignore[no-untyped-def]
    labels = [_label(1, "Liver", "organ"), _label(2, "Liver metastasis", "lesion"),
              _label(3, "Lymph node", "lesion", node=True)]
    folder = write_model(tmp_path / "m", conv_model(), **{"output.labels": labels, "output.decision": "argmax",
                                                           "output.activation": "softmax"})
    return load_manifest(folder)[0]


def test_split_roles_on_a_tiny_multi_label_mask(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    labels = np.zeros((3, 4, 5), dtype=np.uint16)
    labels[0] = 1  # liver
    labels[0, 1, 1:3] = 2  # a metastasis inside it
    labels[2, 3, 4] = 3  # a node
    mask = LesionMask(volume=volume(np.zeros(labels.shape, np.float32)), labels=labels,
                      label_info=manifest.segment_labels())
    lesions, organs = split_roles(mask, manifest)
    assert set(organs) == {"liver"}
    assert organs["liver"].dtype == bool and organs["liver"].shape == labels.shape
    assert int(organs["liver"].sum()) == 20 - 2  # labels are exclusive: the metastasis is not in the organ
    assert sorted(np.unique(lesions.labels).tolist()) == [0, 2, 3]
    assert lesions.labels.dtype == np.uint16 and lesions.volume is mask.volume
    assert int((lesions.labels == 2).sum()) == 2 and int((lesions.labels == 3).sum()) == 1
    assert [i.value for i in lesions.label_info] == [2, 3]
    assert [(lab.name, lab.node) for lab in manifest.labels if lab.role == "lesion"] == [
        ("Liver metastasis", False), ("Lymph node", True)]
    assert mask.labels[0, 0, 0] == 1  # the input mask is untouched


def test_a_lesion_only_model_passes_through(tmp_path: Path) -> None:
    manifest = load_manifest(write_model(tmp_path / "m", conv_model()))[0]
    labels = np.zeros((2, 2, 2), dtype=np.uint16)
    labels[1, 1, 1] = 1
    mask = LesionMask(volume=volume(np.zeros(labels.shape, np.float32)), labels=labels,
                      label_info=manifest.segment_labels())
    lesions, organs = split_roles(mask, manifest)
    assert organs == {} and lesions is mask


def test_a_value_the_model_does_not_have_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    labels = np.full((2, 2, 2), 7, dtype=np.uint16)
    mask = LesionMask(volume=volume(np.zeros(labels.shape, np.float32)), labels=labels, label_info=())
    with pytest.raises(ValueError, match=r"label values \[7\]"):
        split_roles(mask, manifest)


def test_threshold_decision_puts_lesions_over_organs(tmp_path: Path) -> None:
    """Region-based outputs: the organ's channel includes its lesions; a lesion above threshold wins."""
    from daemon.segment.postprocess import decide

    spec = _manifest(tmp_path).output.model_copy(update={"decision": "threshold", "threshold": 0.5})
    organ = np.array([0.9, 0.9, 0.9, 0.2, 0.1], dtype=np.float32)
    metastasis = np.array([0.1, 0.6, 0.3, 0.2, 0.1], dtype=np.float32)
    node = np.array([0.0, 0.0, 0.0, 0.7, 0.4], dtype=np.float32)
    labels = decide({1: organ, 2: metastasis, 3: node}, spec)
    assert labels.tolist() == [1, 2, 1, 3, 0]


def test_argmax_needs_a_label_for_every_foreground_channel(tmp_path: Path) -> None:
    labels = [_label(1, "Liver", "organ"), _label(2, "Liver metastasis", "lesion")]
    argmax = {"output.decision": "argmax", "output.activation": "softmax"}
    folder = write_model(tmp_path / "m", channels_model(4), **{"output.labels": labels, **argmax})
    with pytest.raises(ModelError, match=r"4 channels and decision: argmax, but channels \[3\] have no label"):
        load_model(folder, providers="cpu")
    labels.append(_label(3, "Spleen", "organ"))
    folder = write_model(tmp_path / "m2", channels_model(4), **{"output.labels": labels, **argmax})
    assert [lab.role for lab in load_model(folder, providers="cpu").manifest.labels] == ["organ", "lesion", "organ"]


def test_a_label_may_have_its_own_threshold(tmp_path: Path) -> None:
    from daemon.segment.postprocess import decide

    output = _manifest(tmp_path).output
    labels = [lab.model_copy(update={"threshold": 0.3}) if lab.value == 2 else lab for lab in output.labels]
    spec = output.model_copy(update={"decision": "threshold", "threshold": 0.5, "labels": tuple(labels)})
    organ = np.array([0.9, 0.9, 0.4], dtype=np.float32)
    metastasis = np.array([0.35, 0.25, 0.0], dtype=np.float32)
    node = np.zeros(3, dtype=np.float32)
    assert decide({1: organ, 2: metastasis, 3: node}, spec).tolist() == [2, 1, 0]
    text = (tmp_path / "m" / "model.yaml").read_text().replace("role: lesion", "role: lesion\n    threshold: 0.3", 1)
    (tmp_path / "m" / "model.yaml").write_text(text)
    with pytest.raises(ModelError, match="a label's threshold is for decision: threshold"):
        load_manifest(tmp_path / "m")


def test_sigmoid_of_extreme_logits_is_quiet() -> None:
    """A confident network gives logits beyond float32's exp range: no overflow warning (errors under pytest)."""
    from daemon.segment.postprocess import activate

    out = activate(np.array([-200.0, -90.0, 0.0, 90.0, 200.0], dtype=np.float32), "sigmoid")
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
