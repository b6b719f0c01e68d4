"""Evaluation shared by every system: the metrics themselves (identity, PSNR/SSIM/landmark distance, FID/KID,
CPBD sharpness, SyncNet lip sync, speech dependence, face detection and identity probes), the metric suite
and harness that score any system's test outputs with them, and the reports, plots and sample dumps that
carry the results out. May use `pretrained/` for the networks it scores with; never imports `training/`."""
