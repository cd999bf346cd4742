#!/usr/bin/python3
"""The d2l recipe of the "Long Short-Term Memory" chapter in PyTorch, as the yardstick of the
native engine (a benchmark, not a test). Written for this project after d2l's code: the data
pipeline (read_time_machine, char tokens, Vocab, load_corpus_time_machine, the two samplers),
the scratch LSTM (get_lstm_params, init_lstm_state, lstm, RNNModelScratch), nn.LSTM + RNNModel,
and train_ch8 / train_epoch_ch8 (grad_clipping with theta = 1, SGD with lr = 1).

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
import re
import sys
import time
from collections import Counter

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
from torch.nn import functional as F  # noqa: E402


# --------------------------------------------------------------------------------------------
# data: d2l's read_time_machine, tokenize('char'), Vocab, load_corpus_time_machine

def read_time_machine(path):
    with open(path) as f:
        lines = f.readlines()
    return [re.sub('[^A-Za-z]+', ' ', line).strip().lower() for line in lines]


def tokenize_chars(lines):
    return [list(line) for line in lines]


class Vocab:
    """<unk> first, then tokens by descending frequency, ties in first-seen order."""

    def __init__(self, tokens):
        counter = Counter(token for line in tokens for token in line)
        self.token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = ['<unk>']
        self.token_to_idx = {'<unk>': 0}
        for token, _ in self.token_freqs:
            if token not in self.token_to_idx:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token) - 1

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, token):
        return self.token_to_idx.get(token, 0)


def load_corpus_time_machine(path, max_tokens):
    tokens = tokenize_chars(read_time_machine(path))
    vocab = Vocab(tokens)
    corpus = [vocab[token] for line in tokens for token in line]
    if max_tokens > 0:
        corpus = corpus[:max_tokens]
    return corpus, vocab


def seq_data_iter_random(corpus, batch_size, num_steps):
    corpus = corpus[random.randint(0, num_steps - 1):]
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    random.shuffle(initial_indices)
    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        indices = initial_indices[i: i + batch_size]
        X = [corpus[j: j + num_steps] for j in indices]
        Y = [corpus[j + 1: j + 1 + num_steps] for j in indices]
        yield torch.tensor(X), torch.tensor(Y)


def seq_data_iter_sequential(corpus, batch_size, num_steps):
    offset = random.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset: offset + num_tokens]).reshape(batch_size, -1)
    Ys = torch.tensor(corpus[offset + 1: offset + 1 + num_tokens]).reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        yield Xs[:, i: i + num_steps], Ys[:, i: i + num_steps]


# --------------------------------------------------------------------------------------------
# models: the scratch LSTM and nn.LSTM + RNNModel

def get_lstm_params(vocab_size, num_hiddens, device):
    num_inputs = num_outputs = vocab_size

    def normal(shape):
        return torch.randn(size=shape, device=device) * 0.01

    def three():
        return (normal((num_inputs, num_hiddens)), normal((num_hiddens, num_hiddens)),
                torch.zeros(num_hiddens, device=device))

    W_xi, W_hi, b_i = three()  # input gate
    W_xf, W_hf, b_f = three()  # forget gate
    W_xo, W_ho, b_o = three()  # output gate
    W_xc, W_hc, b_c = three()  # candidate memory cell
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs, device=device)
    params = [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_lstm_state(batch_size, num_hiddens, device):
    return (torch.zeros((batch_size, num_hiddens), device=device),
            torch.zeros((batch_size, num_hiddens), device=device))


def lstm(inputs, state, params):
    [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q] = params
    (H, C) = state
    outputs = []
    for X in inputs:
        I = torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i)
        F_ = torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f)
        O = torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)
        C_tilda = torch.tanh((X @ W_xc) + (H @ W_hc) + b_c)
        C = F_ * C + I * C_tilda
        H = O * torch.tanh(C)
        Y = (H @ W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H, C)


class RNNModelScratch:
    def __init__(self, vocab_size, num_hiddens, device, get_params, init_state, forward_fn):
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.params = get_params(vocab_size, num_hiddens, device)
        self.init_state, self.forward_fn = init_state, forward_fn

    def __call__(self, X, state):
        X = F.one_hot(X.T, self.vocab_size).type(torch.float32)
        return self.forward_fn(X, state, self.params)

    def begin_state(self, batch_size, device):
        return self.init_state(batch_size, self.num_hiddens, device)


class RNNModel(nn.Module):
    def __init__(self, rnn_layer, vocab_size):
        super().__init__()
        self.rnn = rnn_layer
        self.vocab_size = vocab_size
        self.num_hiddens = self.rnn.hidden_size
        self.num_directions = 1
        self.linear = nn.Linear(self.num_hiddens, self.vocab_size)

    def forward(self, inputs, state):
        X = F.one_hot(inputs.T.long(), self.vocab_size).to(torch.float32)
        Y, state = self.rnn(X, state)
        output = self.linear(Y.reshape((-1, Y.shape[-1])))
        return output, state

    def begin_state(self, device, batch_size=1):
        shape = (self.num_directions * self.rnn.num_layers, batch_size, self.num_hiddens)
        return (torch.zeros(shape, device=device), torch.zeros(shape, device=device))


# --------------------------------------------------------------------------------------------
# training: grad_clipping, sgd, train_epoch_ch8

def grad_clipping(net, theta):
    params = [p for p in net.parameters() if p.requires_grad] if isinstance(net, nn.Module) else net.params
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


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
