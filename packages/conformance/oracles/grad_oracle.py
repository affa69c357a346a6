"""Gradient oracles for pelk's adjoint (`grad`): PyTorch autograd through the sequential recurrence.

For each problem it writes `fixtures/grad-<name>.json`: the model spec, inputs, initial state, a
seeded cotangent C, and the float64 gradients of L = sum(C * states) with respect to every weight
(state_dict names), the inputs and the initial state, by backpropagation through time.

Run from the repository root:  python3 packages/conformance/oracles/grad_oracle.py
(torch ≥ 1.13, numpy). The problems: the three shipped torch fixtures (I = 3, H = 8, T = 512) and
the "difficult" GRU (weights ×100, inputs /100; ALGORITHMS.md §8).
"""
import json
import os

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'fixtures')
KEYS = ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']


def make_cell(spec):
    kind, I, H = spec['type'], spec['inputSize'], spec['hiddenSize']
    if kind == 'gru':
        cell = torch.nn.GRUCell(I, H)
    elif kind == 'lstm':
        cell = torch.nn.LSTMCell(I, H)
    else:
        cell = torch.nn.RNNCell(I, H, nonlinearity=spec.get('nonlinearity', 'tanh'))
    with torch.no_grad():
        for key in KEYS:
            getattr(cell, key[:-3]).copy_(torch.tensor(spec['weights'][key]))
    return cell


def oracle(name, spec, inputs, init, seed, note):
    cell = make_cell(spec)
    u = torch.tensor(inputs, requires_grad=True)
    s0 = torch.tensor(init, requires_grad=True)
    H = spec['hiddenSize']
    lstm = spec['type'] == 'lstm'
    states = []
    h, c = (s0[:H], s0[H:]) if lstm else (s0, None)
    for t in range(u.shape[0]):
        if lstm:
            h, c = cell(u[t:t + 1], (h.unsqueeze(0), c.unsqueeze(0)))
            h, c = h[0], c[0]
            states.append(torch.cat([h, c]))
        else:
            h = cell(u[t:t + 1], h.unsqueeze(0))[0]
            states.append(h)
    S = torch.stack(states)
    rng = np.random.default_rng(seed)
    C = rng.standard_normal(S.shape)
    loss = (torch.tensor(C) * S).sum()
    loss.backward()
    out = {
        'name': name,
        'oracle': f'torch {torch.__version__} autograd (BPTT through nn.{type(cell).__name__}), float64',
        'note': note,
        'cell': spec,
        'steps': len(inputs),
        'inputs': inputs,
        'initialState': init,
        'cotangent': C.tolist(),
        'states': S.detach().numpy().tolist(),
        'loss': loss.item(),
        'gradients': {
            'parameters': {key: getattr(cell, key[:-3]).grad.numpy().tolist() for key in KEYS},
            'inputs': u.grad.numpy().tolist(),
            'initialState': s0.grad.numpy().tolist(),
        },
    }
    path = os.path.join(FIXTURES, f'grad-{name}.json')
    with open(path, 'w') as f:
        json.dump(out, f)
    print(f'{path}: L = {loss.item():.6g}, |dL/dW_hh| = {np.abs(out["gradients"]["parameters"]["weight_hh_l0"]).max():.3g}')


def main():
    for name in ['gru-torch-small', 'lstm-torch-small', 'elman-torch-small']:
        with open(os.path.join(FIXTURES, f'{name}.json')) as f:
            fx = json.load(f)
        oracle(name, fx['cell'], fx['inputs'], fx['initialState'], 7, f'the cell, inputs and initial state of {name}.json')
    # The "difficult" GRU: PyTorch-initialised weights ×100, inputs /100 (I = 2, H = 4, T = 200).
    torch.manual_seed(17)
    base = torch.nn.GRUCell(2, 4)
    rng = np.random.default_rng(17)
    spec = {
        'type': 'gru', 'convention': 'torch', 'inputSize': 2, 'hiddenSize': 4,
        'weights': {key: (getattr(base, key[:-3]).detach().numpy() * 100).tolist() for key in KEYS},
    }
    inputs = (rng.standard_normal((200, 2)) / 100).tolist()
    init = (rng.standard_normal(4) * 0.5).tolist()
    oracle('gru-difficult', spec, inputs, init, 8, 'PyTorch-initialised GRU weights ×100, inputs /100 (ALGORITHMS.md §8)')


if __name__ == '__main__':
    main()
