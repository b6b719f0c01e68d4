"""A2V (docs/a2v.md): speech → Wav2Vec2 features → Embed2Lat → VAE-decoded StyleGAN3 latent
residuals → frames of a frozen StyleGAN3. Stages: GAN inversion of the data (`data.py`), the
residual VAE, then Embed2Lat (`module.py`)."""
