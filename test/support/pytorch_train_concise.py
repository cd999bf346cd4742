# PyTorch side of the round-trip test (test/jobs/pytorch-roundtrip.test.ts): d2l's concise LSTM
# (RNNModel = nn.LSTM + nn.Linear) trained with d2l's train_ch8 on The Time Machine for a few
# epochs, saved as safetensors (written by hand: Debian has no safetensors package; the format is
# an 8-byte little-endian header length, a JSON header, the raw float32 data), and its greedy text.
# usage: python3 pytorch_train_concise.py CORPUS OUT.safetensors EPOCHS NUM_HIDDENS MAX_TOKENS
import collections, json, math, random, re, struct, sys
import torch
from torch import nn
from torch.nn import functional as F

corpus_path, out_path = sys.argv[1], sys.argv[2]
epochs, num_hiddens, max_tokens = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
batch_size, num_steps, lr, theta = 32, 35, 1.0, 1.0
torch.manual_seed(0)
random.seed(0)
torch.set_num_threads(1)

# d2l: read_time_machine, tokenize('char'), Vocab (reserved <unk> first, by frequency), cut to max_tokens
lines = [re.sub('[^A-Za-z]+', ' ', line).strip().lower() for line in open(corpus_path).read().splitlines()]
tokens = [ch for line in lines for ch in line]
counts = collections.Counter(tokens)  # insertion order = first seen; sorted() is stable: ties stay in that order
idx_to_token = ['<unk>'] + [t for t, _ in sorted(counts.items(), key=lambda x: x[1], reverse=True)]
token_to_idx = {t: i for i, t in enumerate(idx_to_token)}
corpus = [token_to_idx[t] for t in tokens][:max_tokens]
V = len(idx_to_token)

def seq_data_iter_sequential(corpus, batch_size, num_steps):  # d2l
    offset = random.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset: offset + num_tokens])
    Ys = torch.tensor(corpus[offset + 1: offset + 1 + num_tokens])
    Xs, Ys = Xs.reshape(batch_size, -1), Ys.reshape(batch_size, -1)
    for i in range(0, Xs.shape[1] // num_steps * num_steps, num_steps):
        yield Xs[:, i: i + num_steps], Ys[:, i: i + num_steps]

class RNNModel(nn.Module):  # d2l.RNNModel
    def __init__(self, rnn_layer, vocab_size):
        super().__init__()
        self.rnn = rnn_layer
        self.vocab_size = vocab_size
        self.num_hiddens = self.rnn.hidden_size
        self.linear = nn.Linear(self.num_hiddens, self.vocab_size)
    def forward(self, inputs, state):
        X = F.one_hot(inputs.T.long(), self.vocab_size).to(torch.float32)
        Y, state = self.rnn(X, state)
        return self.linear(Y.reshape((-1, Y.shape[-1]))), state
    def begin_state(self, batch_size):
        return (torch.zeros(1, batch_size, self.num_hiddens), torch.zeros(1, batch_size, self.num_hiddens))

def grad_clipping(net, theta):  # d2l
    params = [p for p in net.parameters() if p.requires_grad]
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
    if norm > theta:
        for p in params:
            p.grad[:] *= theta / norm

net = RNNModel(nn.LSTM(V, num_hiddens), V)
loss = nn.CrossEntropyLoss()
updater = torch.optim.SGD(net.parameters(), lr)
perplexities = []
for epoch in range(epochs):  # d2l train_epoch_ch8, sequential partitioning: the state carried, detached
    state, total, n = None, 0.0, 0
    for X, Y in seq_data_iter_sequential(corpus, batch_size, num_steps):
        if state is None:
            state = net.begin_state(X.shape[0])
        else:
            state = tuple(s.detach() for s in state)
        y = Y.T.reshape(-1)
        y_hat, state = net(X, state)
        l = loss(y_hat, y.long()).mean()
        updater.zero_grad()
        l.backward()
        grad_clipping(net, theta)
        updater.step()
        total += l.item() * y.numel()
        n += y.numel()
    perplexities.append(math.exp(total / n))

def predict(prefix, num_preds):  # d2l predict_ch8, greedy; like the service, never emits <unk>
    state = net.begin_state(1)
    outputs = [token_to_idx[prefix[0]]]
    get_input = lambda: torch.tensor([outputs[-1]]).reshape((1, 1))
    with torch.no_grad():
        for y in prefix[1:]:
            _, state = net(get_input(), state)
            outputs.append(token_to_idx[y])
        for _ in range(num_preds):
            y, state = net(get_input(), state)
            y = y.reshape(-1).clone()
            y[0] = -float('inf')
            outputs.append(int(y.argmax()))
    return ''.join(idx_to_token[i] for i in outputs)

# the state dict as safetensors, the vocabulary and what was trained in __metadata__ (strings)
sd = net.state_dict()
header, blobs, offset = {}, [], 0
for name, t in sd.items():
    b = t.detach().contiguous().to(torch.float32).numpy().tobytes()
    header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
    blobs.append(b)
    offset += len(b)
header['__metadata__'] = {'vocab': json.dumps(idx_to_token), 'kind': 'concise', 'epoch': str(epochs),
                          'perplexity': repr(perplexities[-1]), 'trained_by': 'pytorch ' + torch.__version__}
h = json.dumps(header).encode()
h += b' ' * ((8 - len(h) % 8) % 8)
with open(out_path, 'wb') as f:
    f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
print(json.dumps({'perplexities': perplexities, 'text': predict('time traveller', 50), 'vocab': idx_to_token, 'torch': torch.__version__}))
