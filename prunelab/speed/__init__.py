"""Inference paths that keep a pruned network's speedup: BatchNorm folding, execution forms of a static
network (eager, BN-folded, frozen TorchScript graph, onnxruntime), a batched mode of the sparse executor,
and the realistic-width networks the speed benchmark times. Nothing here measures time: timing lives in
`benchmarks/bench_speed.py`."""
