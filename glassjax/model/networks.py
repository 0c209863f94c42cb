"""DeePMD-kit's dense layers, embedding nets and fitting nets as Flax (linen) modules.

One layer (DeePMD-kit v3 ``NativeLayer``)::

    y = phi(x W + b)                      (phi = activation; none on a fitting net's last layer)
    y = y * idt                           when the layer has a timestep vector (resnet_dt)
    y = y + x        if resnet and out == in
    y = y + [x, x]   if resnet and out == 2 in

Embedding-net and hidden fitting-net layers are all ``resnet``; a timestep ``idt`` exists
only where a skip connection does (``resnet_dt`` and out == in or 2 in).  Parameter names
match DeePMD-kit's serialisation: ``w`` (in, out), ``b`` (out,), ``idt`` (out,).
Initialisation follows DeePMD-kit: ``w ~ N(0, 1/(in+out))``, ``b ~ N(0, 1)``,
``idt ~ N(0.1, 0.001^2)``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def activation_fn(name: Optional[str]):
    """The activation called ``name`` in DeePMD-kit (tanh, relu, gelu, gelu_tf, relu6,
    softplus, sigmoid, silu, none/linear)."""
    from glassjax.errors import ConfigError

    key = "none" if name is None else str(name).lower()
    table = {
        "tanh": jnp.tanh,
        "relu": lambda x: x * (x > 0).astype(x.dtype),
        "gelu": lambda x: 0.5 * x * (1.0 + jnp.tanh(jnp.sqrt(2.0 / jnp.pi) * (x + 0.044715 * x ** 3))),
        "relu6": lambda x: jnp.clip(x, 0.0, 6.0),
        "softplus": jax.nn.softplus,
        "sigmoid": jax.nn.sigmoid,
        "silu": lambda x: x * jax.nn.sigmoid(x),
        "none": lambda x: x,
        "linear": lambda x: x,
    }
    table["gelu_tf"] = table["gelu"]
    if key not in table:
        raise ConfigError(f"activation function {name!r} is not supported: use one of {sorted(table)}")
    return table[key]


def layer_has_timestep(n_in: int, n_out: int, resnet_dt: bool) -> bool:
    """DeePMD-kit creates ``idt`` only where a skip connection exists."""
    return bool(resnet_dt) and (n_out == n_in or n_out == 2 * n_in)


def _normal(scale, mean=0.0):
    def init(key, shape, dtype):
        return mean + scale * jax.random.normal(key, shape, dtype)

    return init


class DenseLayer(nn.Module):
    """One DeePMD-kit layer (see module docstring).  Input (..., in) -> (..., out)."""

    features: int
    activation: Optional[str] = "tanh"
    resnet: bool = True
    timestep: bool = False
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, x):
        n_in = x.shape[-1]
        w = self.param("w", _normal(1.0 / (n_in + self.features) ** 0.5), (n_in, self.features), self.dtype)
        b = self.param("b", _normal(1.0), (self.features,), self.dtype)
        y = activation_fn(self.activation)(x @ w + b)
        if self.timestep:
            idt = self.param("idt", _normal(0.001, 0.1), (self.features,), self.dtype)
            y = y * idt
        if self.resnet and self.features == n_in:
            y = y + x
        elif self.resnet and self.features == 2 * n_in:
            y = y + jnp.concatenate([x, x], axis=-1)
        return y


class EmbeddingNet(nn.Module):
    """Embedding net: layers ``neuron`` (all resnet), input (..., 1) -> (..., neuron[-1])."""

    neuron: Sequence[int]
    activation: str = "tanh"
    resnet_dt: bool = False
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, x):
        return _hidden_layers(x, self.neuron, self.activation, self.resnet_dt, self.dtype)


def _hidden_layers(x, neuron, activation, resnet_dt, dtype):
    """Resnet hidden layers ``layer_0 .. layer_{n-1}`` (call inside a compact method)."""
    n_in = x.shape[-1]
    for i, n_out in enumerate(neuron):
        x = DenseLayer(n_out, activation, True, layer_has_timestep(n_in, n_out, resnet_dt),
                       dtype, name=f"layer_{i}")(x)
        n_in = n_out
    return x


class FittingNet(nn.Module):
    """Fitting net: hidden layers ``neuron`` (resnet), then a linear layer to ``out`` values."""

    neuron: Sequence[int]
    out: int = 1
    activation: str = "tanh"
    resnet_dt: bool = True
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, x):
        x = _hidden_layers(x, self.neuron, self.activation, self.resnet_dt, self.dtype)
        return DenseLayer(self.out, None, False, False, self.dtype, name=f"layer_{len(self.neuron)}")(x)
