#!/usr/bin/env python3
"""Summarises bench/results/fidelity-*.jsonl: final perplexity, mean tokens/s, training time, samples."""
import glob, json, sys

for path in sorted(glob.glob(sys.argv[1] if len(sys.argv) > 1 else 'bench/results/fidelity-*.jsonl')):
    rows = [json.loads(l) for l in open(path)]
    start = next(r for r in rows if r['type'] == 'start')
    ep = [r for r in rows if r['type'] == 'epoch']
    last = ep[-1]
    print(f"{path}: {start['engine']}/{start['backend']} {start['kind']}: epochs {last['epoch']}, "
          f"final perplexity {last['perplexity']:.3f}, mean {sum(e['tokensPerSec'] for e in ep) / len(ep):,.0f} tokens/s, "
          f"training time {last['elapsedMs'] / 1000:.0f} s")
    print('  perplexity at epochs 10/50/100/200/300/400/500: ' +
          ' '.join(f"{e['perplexity']:.2f}" for e in ep if e['epoch'] in (10, 50, 100, 200, 300, 400, 500)))
    for s in last.get('samples', []):
        print(f"  {s['text']!r}")
