"""Check napari_autoconfig.memory against torch's own accounting of biom3d's model.

Needs biom3d and torch next to napari-autoconfig (a CPU build of torch is enough):

    pip install torch biom3d
    python benchmarks/memory_vs_torch.py            # fp32 on CPU, the grid below (a few minutes)
    python benchmarks/memory_vs_torch.py --cuda     # also peak CUDA memory, fp16 and fp32

For every point of a grid of patches, poolings, batches and channel counts it builds biom3d's
``UNet3DVGGDeep`` (its ``UNet``: factor 32, two classes, no deep supervision) and biom3d's loss
(``DC_and_CE_loss`` as its ``DiceCEnnUNet``), runs one fp32 training step (forward, loss,
backward, SGD with Nesterov momentum as biom3d) and measures:

- the bytes autograd saves for the backward pass, through
  ``torch.autograd.graph.saved_tensors_hooks``: every saved tensor still held when the loss is
  computed, each storage counted once, the parameters' own storages left out;
- the parameter bytes;
- for information, the peak of a second step above the weights and momentum (torch's profiler,
  operator by operator), beside the estimate's activations + backward buffers + gradients.

It prints the estimate, the measure and their ratio for each, and exits with status 1 when a ratio
leaves [0.85, 1.15]. With ``--cuda`` (a CUDA device is needed; not run where this was written) it
also trains two steps of a few larger points in fp16 mixed precision (autocast + GradScaler, as
biom3d) and in fp32 and compares ``torch.cuda.max_memory_allocated`` with the estimate's total
without the fixed overhead (the CUDA context is not an allocation).
"""

from __future__ import annotations

import argparse
import sys
import time
import weakref

GRID = (
    # patch (z, y, x), pool (z, y, x), batch, channels
    ((16, 32, 32), (1, 2, 2), 2, 1),
    ((16, 32, 32), (0, 1, 2), 2, 1),
    ((32, 32, 32), (3, 3, 3), 2, 1),
    ((32, 32, 32), (3, 3, 3), 4, 1),
    ((32, 32, 32), (4, 4, 4), 2, 1),
    ((8, 64, 64), (1, 3, 3), 2, 3),
    ((1, 64, 64), (0, 4, 4), 4, 1),
    ((16, 64, 64), (2, 4, 4), 2, 2),
    ((32, 48, 64), (3, 4, 4), 2, 1),
    ((48, 48, 48), (4, 4, 4), 1, 2),
    ((64, 64, 64), (5, 5, 5), 1, 1),
)
CUDA_GRID = (
    ((64, 64, 64), (4, 4, 4), 2, 1),
    ((128, 128, 128), (5, 5, 5), 2, 1),
    ((40, 224, 224), (3, 5, 5), 2, 1),
)
TOLERANCE = 0.15
# Not in the grid: a deepest level of one voxel (e.g. 32x32x32 with 5 poolings), which biom3d's
# InstanceNorm refuses in training ("Expected more than 1 spatial element").


def build(torch, patch, pool, channels):
    """biom3d's default model and loss for a plan."""
    from biom3d.metrics import DC_and_CE_loss
    from biom3d.models.unet3d_vgg_deep import UNet

    model = UNet(num_pools=list(pool), num_classes=2, factor=32, use_deep=False, in_planes=channels)
    loss_fn = DC_and_CE_loss(
        soft_dice_kwargs={"batch_dice": True, "smooth": 1e-5, "do_bg": False}, ce_kwargs={}
    )
    return model, loss_fn


def optimizer_for(torch, model):
    # biom3d's builder: SGD, momentum 0.99, Nesterov, weight decay 3e-5
    return torch.optim.SGD(
        model.parameters(), lr=1e-2, momentum=0.99, nesterov=True, weight_decay=3e-5
    )


def batch_of(torch, patch, batch, channels, device="cpu"):
    x = torch.randn(batch, channels, *patch, device=device)
    # biom3d's masks: one label channel of 0/1 as float (use_softmax, no one-hot)
    y = (torch.rand(batch, 1, *patch, device=device) > 0.7).float()
    return x, y


class _Held:
    """What the pack hook hands to autograd: alive exactly as long as autograd keeps the tensor."""

    __slots__ = ("__weakref__", "tensor")

    def __init__(self, tensor):
        self.tensor = tensor


def measure_cpu(torch, patch, pool, batch, channels):
    """Saved-for-backward bytes (each storage once, parameters excluded) and parameter bytes."""
    torch.manual_seed(0)
    model, loss_fn = build(torch, patch, pool, channels)
    optim = optimizer_for(torch, model)
    own = {p.untyped_storage().data_ptr() for p in model.parameters()}
    held = weakref.WeakSet()

    def pack(tensor):
        box = _Held(tensor)
        held.add(box)
        return box

    def unpack(box):
        return box.tensor

    x, y = batch_of(torch, patch, batch, channels)
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        pred = model(x)
        loss = loss_fn(pred, y)
    # Saved tensors of graph branches already dropped (the Dice's unused true negatives) are gone
    # from the weak set: what is left is what the backward pass will read.
    storages = {}
    for box in list(held):
        storage = box.tensor.untyped_storage()
        if storage.data_ptr() not in own:
            storages[storage.data_ptr()] = storage.nbytes()
    saved = sum(storages.values())
    optim.zero_grad()
    loss.backward()  # the rest of the step, as biom3d's trainer does it
    torch.nn.utils.clip_grad_norm_(model.parameters(), 12)
    optim.step()
    del pred, loss
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return saved, params, step_peak(torch, model, loss_fn, optim, patch, batch, channels)


def step_peak(torch, model, loss_fn, optim, patch, batch, channels):
    """Peak bytes of a second step above what lives between steps (weights, momentum).

    From torch's profiler: each operator's own net allocation, summed in time order (a peak
    inside one operator is not seen). Informative only: not judged.
    """
    from torch.profiler import ProfilerActivity, profile

    x, y = batch_of(torch, patch, batch, channels)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        pred = model(x)
        del x
        loss = loss_fn(pred, y)
        optim.zero_grad()  # gradients freed (set to None), as in biom3d's loop
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12)
        optim.step()
        del pred, loss, y
    events = sorted(
        (e for e in prof.events() if e.self_cpu_memory_usage),
        key=lambda e: e.time_range.start,
    )
    now = peak = 0
    for event in events:
        now += event.self_cpu_memory_usage
        peak = max(peak, now)
    # the step started with last step's gradients alive; zero_grad freed them
    return peak + sum(p.numel() * p.element_size() for p in model.parameters())


def measure_cuda(torch, patch, pool, batch, channels, precision):
    """Peak CUDA bytes allocated over two training steps of biom3d's trainer loop."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model, loss_fn = build(torch, patch, pool, channels)
    model = model.cuda()
    optim = optimizer_for(torch, model)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    for _ in range(2):  # the second step has momentum buffers
        x, y = batch_of(torch, patch, batch, channels, "cuda")
        ctx = torch.amp.autocast("cuda") if scaler else torch.autocast("cuda", enabled=False)
        with ctx:
            pred = model(x)
            del x
            loss = loss_fn(pred, y)
        optim.zero_grad()
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(optim)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 12)
            scaler.step(optim)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 12)
            optim.step()
        del loss, pred, y
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    reserved = torch.cuda.max_memory_reserved()
    del model, optim
    return peak, reserved


def _fmt(values):
    return "x".join(str(v) for v in values)


def run_cpu(torch, estimate_memory, grid):
    print(
        "| patch (z,y,x) | pool | batch | ch | saved: estimate / measured (MiB) | ratio "
        "| params: estimate / measured (MiB) | ratio | step peak: estimate / profiler (MiB) "
        "| ratio | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for patch, pool, batch, channels in grid:
        start = time.perf_counter()
        saved, params, peak = measure_cpu(torch, patch, pool, batch, channels)
        seconds = time.perf_counter() - start
        est = estimate_memory(patch, pool, batch, channels, precision="fp32")
        act_ratio = est.activations_bytes / saved
        par_ratio = 4 * est.parameters / params
        # what the estimate puts on top of weights and momentum: activations, backward's
        # buffers, gradients
        step = est.activations_bytes + est.workspace_bytes + 4 * est.parameters
        worst = max(worst, abs(act_ratio - 1), abs(par_ratio - 1))
        mib = 2**20
        print(
            f"| {_fmt(patch)} | {_fmt(pool)} | {batch} | {channels} | "
            f"{est.activations_bytes / mib:.1f} / {saved / mib:.1f} | {act_ratio:.3f} | "
            f"{4 * est.parameters / mib:.2f} / {params / mib:.2f} | {par_ratio:.3f} | "
            f"{step / mib:.1f} / {peak / mib:.1f} | {step / peak:.2f} | {seconds:.1f} |",
            flush=True,
        )
    print(
        f"largest deviation of saved bytes and parameters: {100 * worst:.3f} % "
        f"(target: within {100 * TOLERANCE:.0f} %)"
    )
    return worst <= TOLERANCE


def run_cuda(torch, estimate_memory, grid):
    print(f"CUDA device: {torch.cuda.get_device_name()}")
    print(
        "| patch (z,y,x) | pool | batch | precision | estimate without overhead (GiB) "
        "| max_memory_allocated (GiB) | ratio | max reserved (GiB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for patch, pool, batch, channels in grid:
        for precision in ("fp16", "fp32"):
            try:
                peak, reserved = measure_cuda(torch, patch, pool, batch, channels, precision)
            except torch.cuda.OutOfMemoryError:
                print(f"| {_fmt(patch)} | {_fmt(pool)} | {batch} | {precision} | out of memory |")
                continue
            est = estimate_memory(patch, pool, batch, channels, precision=precision)
            allocated = est.total_bytes - est.overhead_bytes
            gib = 2**30
            print(
                f"| {_fmt(patch)} | {_fmt(pool)} | {batch} | {precision} | {allocated / gib:.2f} "
                f"| {peak / gib:.2f} | {allocated / peak:.3f} | {reserved / gib:.2f} |",
                flush=True,
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda", action="store_true", help="also measure peak CUDA memory")
    parser.add_argument("--quick", action="store_true", help="only the first three CPU points")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch and biom3d are needed: pip install torch biom3d", file=sys.stderr)
        return 2
    from napari_autoconfig.memory import estimate_memory

    torch.set_num_threads(max(1, torch.get_num_threads()))
    grid = GRID[:3] if args.quick else GRID
    ok = run_cpu(torch, estimate_memory, grid)
    if args.cuda:
        if not torch.cuda.is_available():
            print("--cuda: no CUDA device here", file=sys.stderr)
            return 2
        run_cuda(torch, estimate_memory, CUDA_GRID)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
