"""Gradient-based sensitivity studies: derivatives of glass properties, checked by finite differences.

Every stage of glassjax is JAX, so the derivative of a glass property with respect to
strain, temperature or the potential's parameters is one ``jax.grad`` away.  This package
holds the machinery the notebooks call (``notebooks/03_sensitivity.ipynb``):

- :mod:`~glassjax.sensitivity.fd`: central finite differences (scalars, pytrees, directions),
  the independent check of every derivative here;
- :mod:`~glassjax.sensitivity.elastic`: the elastic tensor by automatic differentiation of the
  stress (clamped-ion and relaxed-ion), and by finite strain;
- :mod:`~glassjax.sensitivity.implicit`: linear response of a relaxed (inherent) structure by
  implicit differentiation (Hessian solves with the translations projected out), e.g. the
  derivative of the relaxed glass's 4B fraction with respect to the potential's parameters;
- :mod:`~glassjax.sensitivity.path`: strain derivatives of smooth 4B and pressure along a
  compression path;
- :mod:`~glassjax.sensitivity.trajectory`: gradients of short-trajectory averages with respect
  to the potential's parameters and to temperature;
- :mod:`~glassjax.sensitivity.params`: naming, flattening and ranking of parameter sensitivities.
"""
