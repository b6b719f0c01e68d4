"""A2V (spec `a2v_stylegan.md`): speech → Wav2Vec2 features → Embed2Lat → VAE-decoded StyleGAN3 latent
residuals → frames of a frozen StyleGAN3. Stages: GAN inversion of the data (`datamodules/a2v.py`), the
residual VAE, then Embed2Lat (`module.py`)."""
