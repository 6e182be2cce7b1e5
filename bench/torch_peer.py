"""PyTorch peer of the reference network (shared/bench/UNET_SPEC.md), for measurement only.

Not a dependency of driftlab: run it with Debian's python3-torch (apt-get install python3-torch)
as `/usr/bin/python3 bench/torch_peer.py --threads 2`. Same network, batch 64, float32,
AdamW lr 1e-4 wd 0.01, grad-norm clip 1.0; median of >= 10 timed iterations after 3 warm-up.
Prints one JSON line; maxRssMB* are the process's peak RSS (getrusage) after the training timing and
at the end (compare bench/train-rss.ts).
"""
import argparse, json, math, platform, resource, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def gn(c):
    return nn.GroupNorm(8, c, eps=1e-5)


class Res(nn.Module):
    def __init__(self, cin, cout, temb=128):
        super().__init__()
        self.n1, self.c1, self.t = gn(cin), nn.Conv2d(cin, cout, 3, padding=1), nn.Linear(temb, cout)
        self.n2, self.c2 = gn(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x))) + self.t(F.silu(temb))[:, :, None, None]
        return self.c2(F.silu(self.n2(h))) + self.skip(x)


class Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n, self.q, self.k, self.v, self.o = gn(c), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.n(x)
        q, k, v = (m(y).reshape(b, c, h * w) for m in (self.q, self.k, self.v))
        a = torch.softmax(torch.einsum('bci,bcj->bij', q, k) / math.sqrt(c), dim=-1)
        return x + self.o(torch.einsum('bij,bcj->bci', a, v).reshape(b, c, h, w))


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.t1, self.t2 = nn.Linear(32, 128), nn.Linear(128, 128)
        self.cin = nn.Conv2d(1, 32, 3, padding=1)
        self.r0, self.d0 = Res(32, 32), nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.r1, self.d1 = Res(32, 64), nn.Conv2d(64, 64, 3, stride=2, padding=1)
        self.r2, self.a2 = Res(64, 64), Attn(64)
        self.m1, self.ma, self.m2 = Res(64, 64), Attn(64), Res(64, 64)
        self.u2, self.ua2, self.up2 = Res(128, 64), Attn(64), nn.Conv2d(64, 64, 3, padding=1)
        self.u1, self.up1 = Res(128, 64), nn.Conv2d(64, 64, 3, padding=1)
        self.u0 = Res(96, 32)
        self.nout, self.cout = gn(32), nn.Conv2d(32, 1, 3, padding=1)

    def forward(self, x, t):
        f = torch.exp(-math.log(10000) * torch.arange(16, dtype=torch.float32) / 16)
        e = t[:, None].float() * f[None]
        temb = self.t2(F.silu(self.t1(torch.cat([e.sin(), e.cos()], 1))))
        h = self.cin(x)
        s1 = self.r0(h, temb); h = self.d0(s1)
        s2 = self.r1(h, temb); h = self.d1(s2)
        s3 = self.a2(self.r2(h, temb))
        h = self.m2(self.ma(self.m1(s3, temb)), temb)
        h = self.ua2(self.u2(torch.cat([h, s3], 1), temb)); h = self.up2(F.interpolate(h, scale_factor=2, mode='nearest'))
        h = self.u1(torch.cat([h, s2], 1), temb); h = self.up1(F.interpolate(h, scale_factor=2, mode='nearest'))
        h = self.u0(torch.cat([h, s1], 1), temb)
        return self.cout(F.silu(self.nout(h)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = UNet()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.01)
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0).float()
    x0 = torch.rand(64, 1, 28, 28) * 2 - 1

    def train_step():
        t = torch.randint(0, 1000, (64,))
        eps = torch.randn_like(x0)
        a = abar[t][:, None, None, None]
        loss = F.mse_loss(net(a.sqrt() * x0 + (1 - a).sqrt() * eps, t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    def fwd():
        with torch.no_grad():
            net(x0, torch.randint(0, 1000, (64,)))

    def timed(f):
        for _ in range(a.warmup):
            f()
        ts = []
        for _ in range(a.iters):
            t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    tr = timed(train_step)
    rss_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    fw = timed(fwd)
    print(json.dumps({
        'peer': 'pytorch', 'torch': torch.__version__, 'threads': a.threads, 'params': sum(p.numel() for p in net.parameters()),
        'trainImgPerSec': 64 / tr, 'fwdImgPerSec': 64 / fw,
        'maxRssMBAfterTrain': round(rss_train), 'maxRssMB': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), 'cpu': platform.processor() or platform.machine(),
        'command': f'/usr/bin/python3 bench/torch_peer.py --threads {a.threads}',
    }))


if __name__ == '__main__':
    main()
