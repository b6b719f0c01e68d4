"""Wav2Pix (Duarte et al., ICASSP 2019): raw speech → the speaker's face, a conditional LSGAN (spec `wav2pix.md`)."""
