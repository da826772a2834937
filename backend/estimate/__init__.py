"""The memory estimator: tensor-level weights, llama.cpp's quantization recipe, placement.

New modules of the estimator live here; backend.memory, backend.compute_graph and
backend.catalog move in with the next refactor.
"""
