"""The compiled layer: scalar functions written once, the JIT options, the CPU and CUDA drivers
built from them, the parameter vectors that carry a format into a kernel, and the one dispatch
that runs a named driver on a target. Nothing here reads a format name or a user's array."""
