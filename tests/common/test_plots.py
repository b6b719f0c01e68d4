"""Metric-curve plots: a readable PNG with one subplot per metric, drawn without a display."""

import matplotlib
import numpy as np
from PIL import Image

from lightning_modules.common.metrics.plots import curves_figure, plot_sweep, save_figure
from lightning_modules.common.metrics.reports import Sweep

SNRS = (-10.0, 0.0, 10.0, 20.0)


def results() -> dict:
    rising = {
        snr: {"psnr": 20 + snr / 10, "ssim": 0.5 + snr / 100, "nlmd_mouth": 3 - snr / 20} for snr in SNRS
    }
    flatter = {snr: {"psnr": 22 + snr / 20, "ssim": 0.6, "nlmd_mouth": 2.5} for snr in SNRS}
    return {"babble": rising, "factory": flatter}


def test_snr_curves_write_a_png_with_one_subplot_per_metric(tmp_path):
    backend = matplotlib.get_backend()
    references = {"babble": {"psnr": 25.0, "ssim": 0.8, "nlmd_mouth": 1.0}}
    figure = curves_figure(results(), ("psnr", "ssim", "nlmd_mouth"), "SNR (dB)", references)
    path = save_figure(figure, tmp_path / "plots" / "snr.png")
    assert path == tmp_path / "plots" / "snr.png" and path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]
    assert matplotlib.get_backend() == backend  # the global backend is left alone

    figure = curves_figure(results(), ("psnr", "ssim"), "SNR (dB)", references={"clean": {"psnr": 30.0}})
    assert len(figure.axes) == 2
    psnr_axis = figure.axes[0]
    assert len(psnr_axis.lines) == 3  # two labels and the dashed clean reference
    assert np.allclose(psnr_axis.lines[0].get_xdata(), SNRS)
    assert psnr_axis.lines[2].get_linestyle() == "--"


def test_a_report_sweep_is_plotted(tmp_path):
    sweep = Sweep(
        variable="SNR (dB)",
        metrics=("psnr", "ssim", "nlmd_mouth"),
        curves=results(),
        references={"clean": {"psnr": 30.0, "ssim": 0.9, "nlmd_mouth": 0.5}},
    )
    path = plot_sweep(sweep, tmp_path / "sweep.png", title="E2E-NR")
    with Image.open(path) as image:
        image.verify()
