#!/usr/bin/python3
"""The d2l recipe of the "Long Short-Term Memory" chapter in PyTorch, as the yardstick of the
native engine (a benchmark, not a test): d2l's data pipeline, models, grad_clipping and sgd
(bench/d2l_torch.py) trained as train_ch8 / train_epoch_ch8 do (theta = 1, lr = 1).

Run with Debian's python3 and python3-torch (PyTorch 1.13, CPU), with libblas.so.3 switched to
OpenBLAS (see docs/native-engine.md):

    /usr/bin/python3 bench/pytorch_reference.py --kind scratch --steps 60 --json
    /usr/bin/python3 bench/pytorch_reference.py --kind concise --epochs 500

On a GPU (bench/gpu/check.sh): --device cuda. The loop stays d2l's, host syncs included
(grad_clipping's `if norm > theta`, the loss read every minibatch): it is the yardstick as users
run it; nn.LSTM then runs cuDNN.

--steps N times N minibatches (after a short warm-up) and reports tokens/s and the perplexity
of those minibatches; --epochs N trains N whole epochs as train_ch8 does and reports the
tokens/s over all of them and the last epoch's perplexity.
"""
import argparse
import json
import math
import os
import random
import sys
import time

parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
parser.add_argument('--kind', choices=['scratch', 'concise'], default='scratch')
parser.add_argument('--epochs', type=int, default=None, help='train this many epochs (default 500 unless --steps)')
parser.add_argument('--steps', type=int, default=None, help='time this many minibatches instead of whole epochs')
parser.add_argument('--warmup', type=int, default=3, help='untimed minibatches before --steps')
parser.add_argument('--num-hiddens', type=int, default=256)
parser.add_argument('--num-layers', type=int, default=1, help='nn.LSTM layers (concise only)')
parser.add_argument('--batch-size', type=int, default=32)
parser.add_argument('--num-steps', type=int, default=35)
parser.add_argument('--max-tokens', type=int, default=10000)
parser.add_argument('--lr', type=float, default=1.0)
parser.add_argument('--sampling', choices=['sequential', 'random'], default='sequential')
parser.add_argument('--threads', type=int, default=1, help='torch.set_num_threads (intra-op)')
parser.add_argument('--blas-threads', type=int, default=None,
                    help='OpenBLAS threads (OPENBLAS_NUM_THREADS; default: the environment, else 2)')
parser.add_argument('--seed', type=int, default=0)
parser.add_argument('--data', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'timemachine.txt'))
parser.add_argument('--device', default='cpu', help="torch device: 'cpu' (default) or 'cuda'")
parser.add_argument('--json', action='store_true', help='print one JSON object instead of text')
parser.add_argument('--quiet', action='store_true', help='no per-epoch lines')
args = parser.parse_args()
if args.epochs is None and args.steps is None:
    args.epochs = 500

# OpenBLAS reads its thread count when the library loads, so before importing torch.
if args.blas_threads is not None:
    os.environ['OPENBLAS_NUM_THREADS'] = str(args.blas_threads)
else:
    os.environ.setdefault('OPENBLAS_NUM_THREADS', '2')

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from d2l_torch import (  # noqa: E402
    RNNModel, RNNModelScratch, get_lstm_params, grad_clipping, init_lstm_state, load_corpus_time_machine, lstm,
    seq_data_iter_random, seq_data_iter_sequential, sgd)


def train_minibatch(net, X, Y, state, loss, updater):
    """The body of d2l's train_epoch_ch8 loop for one minibatch; returns (loss, new state)."""
    X, Y = X.to(args.device), Y.to(args.device)
    y = Y.T.reshape(-1)
    y_hat, state = net(X, state)
    l = loss(y_hat, y.long()).mean()
    if isinstance(updater, torch.optim.Optimizer):
        updater.zero_grad()
        l.backward()
        grad_clipping(net, 1)
        updater.step()
    else:
        l.backward()
        grad_clipping(net, 1)
        updater(batch_size=1)
    return float(l), state


def minibatches(corpus):
    """(first-of-epoch, X, Y) forever, one epoch after another."""
    while True:
        it = (seq_data_iter_random if args.sampling == 'random' else seq_data_iter_sequential)(
            corpus, args.batch_size, args.num_steps)
        for k, (X, Y) in enumerate(it):
            yield k == 0, X, Y


def begin_state(net, batch_size, device):
    return net.begin_state(batch_size=batch_size, device=device)


def detach(net, state):
    if isinstance(net, nn.Module) and not isinstance(state, tuple):
        state.detach_()
    else:
        for s in state:
            s.detach_()
    return state


def blas_in_use():
    """The BLAS library this process mapped (Debian's torch calls libblas.so.3)."""
    found = set()
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ''
                if 'blas' in os.path.basename(path).lower():
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(found)


def main():
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    corpus, vocab = load_corpus_time_machine(args.data, args.max_tokens)
    V, H = len(vocab), args.num_hiddens
    if args.kind == 'scratch':
        net = RNNModelScratch(V, H, device, get_lstm_params, init_lstm_state, lstm)
        updater = lambda batch_size: sgd(net.params, args.lr, batch_size)  # noqa: E731
    else:
        net = RNNModel(nn.LSTM(V, H, num_layers=args.num_layers), V).to(device)
        updater = torch.optim.SGD(net.parameters(), args.lr)
    loss = nn.CrossEntropyLoss()
    tokens_per_batch = args.batch_size * args.num_steps
    stream = minibatches(corpus)
    state = None
    result = {
        'engine': 'pytorch', 'torch': torch.__version__, 'kind': args.kind, 'numHiddens': H, 'numLayers': args.num_layers,
        'batchSize': args.batch_size, 'numSteps': args.num_steps, 'vocabSize': V, 'torchThreads': torch.get_num_threads(),
        'blasThreads': os.environ.get('OPENBLAS_NUM_THREADS'), 'blas': blas_in_use(), 'device': args.device,
    }
    if device.type == 'cuda':
        result['deviceName'] = torch.cuda.get_device_name(device)
        result['cudnn'] = torch.backends.cudnn.version()

    def step():
        nonlocal state
        first, X, Y = next(stream)
        if state is None or first or args.sampling == 'random':
            state = begin_state(net, X.shape[0], device)
        else:
            state = detach(net, state)
        l, state = train_minibatch(net, X, Y, state, loss, updater)
        return l

    if args.steps is not None:
        for _ in range(args.warmup):
            step()
        losses = []
        start = time.perf_counter()
        for _ in range(args.steps):
            losses.append(step())
        elapsed = time.perf_counter() - start
        result.update(steps=args.steps, seconds=elapsed, tokensPerSec=args.steps * tokens_per_batch / elapsed,
                      perplexity=math.exp(sum(losses) / len(losses)))
    else:
        # train_ch8: one timed pass per epoch, state reset at the first minibatch of each epoch
        total_time = 0.0
        total_tokens = 0
        ppl = float('nan')
        for epoch in range(args.epochs):
            state = None
            it = (seq_data_iter_random if args.sampling == 'random' else seq_data_iter_sequential)(
                corpus, args.batch_size, args.num_steps)
            start = time.perf_counter()
            l_sum, n = 0.0, 0
            for X, Y in it:
                if state is None or args.sampling == 'random':
                    state = begin_state(net, X.shape[0], device)
                else:
                    state = detach(net, state)
                l, state = train_minibatch(net, X, Y, state, loss, updater)
                l_sum += l * Y.numel()
                n += Y.numel()
            total_time += time.perf_counter() - start
            total_tokens += n
            ppl = math.exp(l_sum / n)
            if not args.quiet and not args.json and ((epoch + 1) % 10 == 0 or epoch == 0):
                print(f'epoch {epoch + 1}: perplexity {ppl:.2f}, {n / (total_time / (epoch + 1)):.0f} tokens/s', flush=True)
        result.update(epochs=args.epochs, seconds=total_time, tokensPerSec=total_tokens / total_time, perplexity=ppl)

    if device.type == 'cpu' and not any('openblas' in p for p in result['blas']):
        print('warning: PyTorch is not using OpenBLAS (libblas.so.3 -> %s); see docs/native-engine.md'
              % ', '.join(result['blas']) if result['blas'] else 'warning: no BLAS library found in the process maps',
              file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.kind}: perplexity {result['perplexity']:.3f}, {result['tokensPerSec']:.0f} tokens/s "
              f"(torch {torch.__version__}, {result['torchThreads']} torch thread(s), "
              f"OPENBLAS_NUM_THREADS={result['blasThreads']}, BLAS {', '.join(result['blas']) or '?'})")


if __name__ == '__main__':
    main()
