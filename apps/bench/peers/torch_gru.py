"""torch.nn.GRU on the CPU: the peer row of `pelk bench` (apps/bench/src/commands/bench.ts).

Reads the GRU's PyTorch state dict (JSON) and the inputs (raw float32, [T, I]) that pelk wrote,
runs one batch-1 sequence through torch.nn.GRU in float32 with warm-ups and timed runs, writes
the hidden states (raw float32, [T, H]) for pelk to compare, and prints one JSON line of timings.

    python3 torch_gru.py <weights.json> <inputs.f32> <states.f32> <T> <I> <H> <warmup> <runs>
"""
import json
import sys
import time

import numpy as np
import torch


def main() -> None:
    weights_path, inputs_path, states_path = sys.argv[1:4]
    T, I, H, warmup, runs = (int(a) for a in sys.argv[4:9])
    torch.manual_seed(0)
    with open(weights_path) as f:
        weights = json.load(f)
    gru = torch.nn.GRU(I, H, batch_first=True)
    gru.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in weights.items()})
    gru.eval()
    x = torch.from_numpy(np.fromfile(inputs_path, dtype=np.float32).reshape(1, T, I))
    h0 = torch.zeros(1, 1, H)
    times = []
    with torch.no_grad():
        for r in range(warmup + runs):
            start = time.perf_counter()
            out, _ = gru(x, h0)
            elapsed = (time.perf_counter() - start) * 1000
            if r >= warmup:
                times.append(elapsed)
    out.numpy().astype(np.float32).reshape(T, H).tofile(states_path)
    times.sort()
    print(json.dumps({
        "implementation": f"torch.nn.GRU {torch.__version__} (CPU, {torch.get_num_threads()} threads)",
        "runsMs": times,
        "medianMs": times[len(times) // 2],
    }))


if __name__ == "__main__":
    main()
