"""`make weights-check`: what a weights folder holds and enables, with a wrong file named and explained."""

import torch

from experiments.weights_check import FILES, check_folder, main


def statuses(folder):
    return {spec.name: (status, detail) for spec, status, detail in check_folder(folder)}


def test_an_empty_folder_enables_nothing_and_says_where_each_file_goes(tmp_path, capsys):
    assert {status for status, _ in statuses(tmp_path).values()} == {"missing"}
    main(["--weights-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"Enabled: 0 of {len(FILES)}" in out and "syncnet_v2.model | missing | LSE-D" in out


def test_a_wrong_file_is_named_with_its_reason_and_a_good_one_enables_its_metric(tmp_path):
    from lightning_modules.common.metrics.lip_sync import load_syncnet

    (tmp_path / "vgg19-dcbb9e9d.pth").write_bytes(b"half a download")
    torch.save(load_syncnet(None, allow_random=True).state_dict(), tmp_path / "syncnet_v2.model")
    found = statuses(tmp_path)
    assert found["vgg19-dcbb9e9d.pth"][0] == "wrong file" and "SHA-256" in found["vgg19-dcbb9e9d.pth"][1]
    assert found["syncnet_v2.model"][0] == "present, loads"


def test_fvd_and_csim_files_are_loaded_and_a_damaged_one_is_named(tmp_path):
    from tests.common.test_csim_reference import tiny_arcface
    from tests.common.test_fvd_reference import save_tiny_i3d

    save_tiny_i3d(tmp_path / "i3d_torchscript.pt")
    (tmp_path / "w600k_r50.onnx").write_bytes(b"half a download")
    found = statuses(tmp_path)
    assert found["i3d_torchscript.pt"][0] == "present, loads"
    assert (
        found["w600k_r50.onnx"][0] == "wrong file"
        and "w600k_r50.onnx: not a readable ONNX" in (found["w600k_r50.onnx"][1])
    )
    tiny_arcface(tmp_path / "w600k_r50.onnx")
    assert statuses(tmp_path)["w600k_r50.onnx"][0] == "present, loads"
