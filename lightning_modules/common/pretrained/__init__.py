"""Third-party pretrained networks read from files the user supplies, never downloaded: checked state-dict
loading (`weights.py`) and the networks built on it (FaceNet, VGG-19 perceptual loss, LPIPS, face-identity
embedders). Used by `metrics/` and by the systems' training losses (FaceNet, VGG-19); imports neither
`metrics/` nor `training/`."""
