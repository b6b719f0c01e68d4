"""Wav2Pix (Duarte et al., ICASSP 2019): raw speech → the speaker's face, a conditional LSGAN
(docs/wav2pix.md)."""
