#!/usr/bin/python3
"""Training steps of a ViT in PyTorch eager (float32, AdamW), for bench/train-vs-torch.mjs: the
default MNIST ViT, or a 224-px deit-tiny-shaped model with a 10-class head (a fine-tune step).
Prints one JSON line: {"seconds": …, "images": …}.
Usage: /usr/bin/python3 bench/train_torch.py --threads 1 --batch 32 --images 8000 [--shape deit-tiny]"""
import argparse, json, math, time
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--images', type=int, default=8000)
ap.add_argument('--shape', default='mnist', choices=['mnist', 'deit-tiny'])
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
D, L, H, M, p, C, S, K = (64, 4, 4, 128, 7, 1, 28, 10) if a.shape == 'mnist' else (192, 12, 3, 768, 16, 3, 224, 10)
EPS = 1e-6 if a.shape == 'mnist' else 1e-12
T = (S // p) ** 2 + 1


class ViT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Conv2d(C, D, p, p)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.pos = torch.nn.Parameter(torch.randn(1, T, D) * 0.02)
        self.blocks = torch.nn.ModuleList([torch.nn.ModuleDict({
            'ln1': torch.nn.LayerNorm(D, eps=EPS), 'qkv': torch.nn.Linear(D, 3 * D), 'proj': torch.nn.Linear(D, D),
            'ln2': torch.nn.LayerNorm(D, eps=EPS), 'fc1': torch.nn.Linear(D, M), 'fc2': torch.nn.Linear(M, D)}) for _ in range(L)])
        self.norm = torch.nn.LayerNorm(D, eps=EPS)
        self.head = torch.nn.Linear(D, K)

    def forward(self, x):
        B = x.shape[0]
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(B, 1, D), x], 1) + self.pos
        for b in self.blocks:
            q, k, v = b['qkv'](b['ln1'](x)).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // H), -1) @ v
            x = x + b['proj'](att.transpose(1, 2).reshape(B, T, D))
            x = x + b['fc2'](F.gelu(b['fc1'](b['ln2'](x))))
        return self.head(self.norm(x)[:, 0])


model = ViT()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
xs = torch.randn(a.images, C, S, S)
ys = torch.randint(0, K, (a.images,))
steps = a.images // a.batch
for i in range(3 if a.shape == 'mnist' else 1):  # warm-up
    loss = F.cross_entropy(model(xs[:a.batch]), ys[:a.batch]); opt.zero_grad(); loss.backward(); opt.step()
t0 = time.perf_counter()
for s in range(steps):
    xb, yb = xs[s * a.batch:(s + 1) * a.batch], ys[s * a.batch:(s + 1) * a.batch]
    loss = F.cross_entropy(model(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(json.dumps({'seconds': time.perf_counter() - t0, 'images': steps * a.batch, 'torch': torch.__version__, 'threads': a.threads}))
