"""Training DeepPot-SE models with optax: DeePMD-kit's loss and learning-rate schedule."""
