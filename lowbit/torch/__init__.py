"""lowbit's formats and accumulators in PyTorch (extra `torch`).

- `quantize`, `encode`, `decode`: the NumPy API on tensors, bit for bit (`tensors`);
- `fake_quantize`: the differentiable form, with a straight-through or clipped straight-through
  gradient (`autograd`);
- quantizers whose scale is an `nn.Parameter`, with LSQ's and ParetoQ's gradients (`learned`);
- `quantize_model`, `unquantize_model`, `summary`, `QuantLinear`, `Rule`: formats and emulated
  accumulators on a model's linear layers (`modules`).

Importing this package needs torch; `import lowbit` does not.
"""

from .autograd import Grad, block_bounds, fake_quantize
from .learned import LearnedKind, LearnedScale, learned_quantize, learned_quantizer
from .modules import LayerSummary, QuantLinear, Rule, layer_summaries, quantize_model, summary, unquantize_model
from .tensors import decode, encode, quantize

__all__ = [
    "Grad",
    "LayerSummary",
    "LearnedKind",
    "LearnedScale",
    "QuantLinear",
    "Rule",
    "block_bounds",
    "decode",
    "encode",
    "fake_quantize",
    "layer_summaries",
    "learned_quantize",
    "learned_quantizer",
    "quantize",
    "quantize_model",
    "summary",
    "unquantize_model",
]
