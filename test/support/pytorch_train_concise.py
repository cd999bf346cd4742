# PyTorch side of the round-trip test (test/jobs/pytorch-roundtrip.test.ts): d2l's concise LSTM
# (RNNModel = nn.LSTM + nn.Linear) trained with d2l's train_ch8 on The Time Machine for a few
# epochs, saved as safetensors with the vocabulary in its metadata, and its greedy text.
# usage: python3 pytorch_train_concise.py CORPUS OUT.safetensors EPOCHS NUM_HIDDENS MAX_TOKENS
import json, math, os, random, sys
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bench'))
from d2l_torch import RNNModel, grad_clipping, load_corpus_time_machine, predict_ch8, seq_data_iter_sequential, write_safetensors  # noqa: E402

corpus_path, out_path = sys.argv[1], sys.argv[2]
epochs, num_hiddens, max_tokens = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
batch_size, num_steps, lr, theta = 32, 35, 1.0, 1.0
torch.manual_seed(0)
random.seed(0)
torch.set_num_threads(1)
device = torch.device('cpu')

corpus, vocab = load_corpus_time_machine(corpus_path, max_tokens)
V = len(vocab)
net = RNNModel(nn.LSTM(V, num_hiddens), V)
loss = nn.CrossEntropyLoss()
updater = torch.optim.SGD(net.parameters(), lr)
perplexities = []
for epoch in range(epochs):  # d2l train_epoch_ch8, sequential partitioning: the state carried, detached
    state, total, n = None, 0.0, 0
    for X, Y in seq_data_iter_sequential(corpus, batch_size, num_steps):
        if state is None:
            state = net.begin_state(batch_size=X.shape[0], device=device)
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

# the state dict as safetensors, the vocabulary and what was trained in __metadata__ (strings)
write_safetensors(out_path, net.state_dict(), {
    'vocab': json.dumps(vocab.idx_to_token), 'kind': 'concise', 'epoch': str(epochs),
    'perplexity': repr(perplexities[-1]), 'trained_by': 'pytorch ' + torch.__version__})
print(json.dumps({'perplexities': perplexities, 'text': predict_ch8('time traveller', 50, net, vocab, device),
                  'vocab': vocab.idx_to_token, 'torch': torch.__version__}))
