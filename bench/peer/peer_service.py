#!/usr/bin/python3
"""The benchmark suite's peer: the plain Python service anomalyd is measured
against (`bench/suite.sh --peer`). Not part of anomalyd; a yardstick.

A pyzmq ROUTER socket and a PyTorch VAE of the daemon's reference shape
(--dim features, hidden [128], latent 8; ReLU; the decoder reads the latent
mean, as the daemon's scorer does). Each request is one frame of raw
little-endian float32, N x dim, row-major, after the routing envelope (a
DEALER client sends [payload] and the ROUTER sees [id][payload]; a REQ
client's empty delimiter is kept too: the reply is the request's envelope
plus one frame). The reply is N x 3 float32: reconstruction (sum of squared
errors of the standardised record), kl, score = reconstruction + kl. A
payload that is empty or not a multiple of 4 * dim bytes gets an empty
frame back. Requests are answered one at a time, in arrival order.

The weights are random with a fixed seed (they do not change the cost), the
standardisation a fixed offset and scale per feature. What the daemon does
besides (record ids, per-record results, p-values, flags, storing the
flagged records) the peer does not do.

Run it with the tuned environment (bench/peer/run_peer.sh sets it):

  bench/peer/run_peer.sh --log peer.log -- --endpoint tcp://127.0.0.1:7700
  bench/peer/peer_service.py --endpoint tcp://127.0.0.1:7700 [--dim 38]
                             [--hidden 128] [--latent 8] [--threads 1]
  bench/peer/peer_service.py --self-test   # in-process, no sockets

Exit status: 0 after SIGTERM or SIGINT, or a passed self-test; 1 a failed
self-test; 2 bad arguments; 77 (ctest's skip code) when torch, numpy or
pyzmq cannot be imported.
"""

import argparse
import signal
import sys
import warnings

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:  # Debian: python3-torch, python3-numpy
    print(f"peer_service: {e}; skipped", file=sys.stderr)
    sys.exit(77)

# The daemon's default clamp of the log variance (model/model.h).
LOGVAR_MIN, LOGVAR_MAX = -10.0, 10.0
# Seed of the random weights and standardisation (any fixed value).
SEED = 1


class Vae(nn.Module):
    """The reference VAE: encoder d -> hidden -> 2 * latent (mean, log
    variance), decoder latent -> hidden -> d."""

    def __init__(self, dim, hidden, latent):
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.encoder_head = nn.Linear(hidden, 2 * latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        # Per-feature standardisation, as the daemon's normaliser applies.
        self.register_buffer("offset", torch.randn(dim) * 0.1)
        self.register_buffer("inv_scale", 1.0 + torch.rand(dim) * 0.1)

    def forward(self, x):
        """x: N x d. Returns N x 3 (reconstruction, kl, score)."""
        x = (x - self.offset) * self.inv_scale
        head = self.encoder_head(self.encoder(x))
        mu = head[:, :self.latent]
        logvar = head[:, self.latent:].clamp(LOGVAR_MIN, LOGVAR_MAX)
        rec = (x - self.decoder(mu)).pow(2).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return torch.stack((rec, kl, rec + kl), dim=1)


def make_model(dim, hidden, latent):
    torch.manual_seed(SEED)
    return Vae(dim, hidden, latent).eval()


def score_payload(model, dim, payload):
    """The reply to one request payload (bytes-like): N x 3 float32 as a
    numpy array, or b"" when the payload is empty or not whole records."""
    n, rest = divmod(len(payload), 4 * dim)
    if n == 0 or rest:
        return b""
    # The frame is read-only; the model never writes to its input.
    x = torch.frombuffer(payload, dtype=torch.float32).view(n, dim)
    with torch.inference_mode():
        return model(x).numpy()


def self_test(args):
    """Scores batches in-process; returns the number of failed checks."""
    model = make_model(args.dim, args.hidden, args.latent)
    failed = 0

    def check(ok, what):
        nonlocal failed
        if not ok:
            failed += 1
            print(f"peer_service --self-test: FAILED: {what}", file=sys.stderr)

    rng = np.random.default_rng(SEED)
    for n in (1, 7, 1024):
        x = rng.standard_normal((n, args.dim), dtype=np.float32)
        out = score_payload(model, args.dim, x.tobytes())
        check(isinstance(out, np.ndarray) and out.shape == (n, 3)
              and out.dtype == np.float32, f"batch of {n}: shape {getattr(out, 'shape', None)}")
        if not isinstance(out, np.ndarray) or out.shape != (n, 3):
            continue
        check(bool(np.isfinite(out).all()), f"batch of {n}: non-finite output")
        check(bool((out[:, :2] >= 0).all()), f"batch of {n}: a negative term")
        check(np.allclose(out[:, 2], out[:, 0] + out[:, 1], rtol=1e-6),
              f"batch of {n}: score != reconstruction + kl")
        if n > 1:  # a record scores the same alone as in a batch
            alone = score_payload(model, args.dim, x[-1:].tobytes())
            check(np.allclose(alone[0], out[-1], rtol=1e-4, atol=1e-5),
                  f"batch of {n}: last record scored alone differs")
    for size in (0, 3, 4 * args.dim + 1, 4 * args.dim - 4):
        check(score_payload(model, args.dim, b"\0" * size) == b"",
              f"a {size}-byte payload is not rejected")
    print(f"peer_service --self-test: {'OK' if failed == 0 else f'{failed} failed'}"
          f" (dim {args.dim}, hidden {args.hidden}, latent {args.latent},"
          f" torch {torch.__version__})")
    return failed


def serve(args):
    try:
        import zmq  # only here: the self-test needs no pyzmq
    except ImportError as e:  # Debian: python3-zmq
        print(f"peer_service: {e}; cannot serve", file=sys.stderr)
        return 77

    model = make_model(args.dim, args.hidden, args.latent)
    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctx = zmq.Context(1)
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(args.endpoint)
    endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    # Warm-up: the first forward pass of each size allocates and picks kernels.
    for n in (1, 1024):
        score_payload(model, args.dim, bytes(4 * args.dim * n))
    print(f"peer ready {endpoint} dim {args.dim} hidden {args.hidden} latent {args.latent}"
          f" threads {torch.get_num_threads()} torch {torch.__version__}",
          file=sys.stderr, flush=True)
    requests = 0
    while not stop:
        # Poll with a timeout so a signal is seen; then drain what is queued
        # without blocking, so a busy socket costs one poll per burst.
        if not sock.poll(100):
            continue
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) < 2:  # no routing id: cannot be answered
                continue
            frames[-1] = score_payload(model, args.dim, frames[-1])
            sock.send_multipart(frames)
            requests += 1
    sock.close()
    ctx.term()
    print(f"peer stopped after {requests} requests", file=sys.stderr, flush=True)
    return 0


def main():
    p = argparse.ArgumentParser(
        description="The benchmark suite's Python peer (raw float32 over a ZeroMQ ROUTER)")
    p.add_argument("--endpoint", help="endpoint to bind, e.g. tcp://127.0.0.1:7700")
    p.add_argument("--dim", type=int, default=38, help="features per record (default 38)")
    p.add_argument("--hidden", type=int, default=128, help="hidden layer width (default 128)")
    p.add_argument("--latent", type=int, default=8, help="latent dimensions (default 8)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: the peer's best on 2 cores)")
    p.add_argument("--self-test", action="store_true",
                   help="score batches in-process, check shapes and finiteness, exit")
    args = p.parse_args()
    if min(args.dim, args.hidden, args.latent, args.threads) < 1:
        p.error("--dim, --hidden, --latent and --threads must be at least 1")
    warnings.filterwarnings("ignore", message="The given buffer is not writable")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.self_test:
        return 1 if self_test(args) else 0
    if not args.endpoint:
        p.error("--endpoint is required (or --self-test)")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
