"""Training infrastructure shared by every system: the validation/test step base module, the manual GAN
step and adversarial losses, callbacks, stage-to-stage checkpoint loading and the run history kept across
interruptions. May use `pretrained/`; never imports `metrics/`."""
