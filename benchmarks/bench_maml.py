"""MAML meta-step speed and MAML memory, measured side by side in one run.

(a) Speed: one second-order MAML meta-step (conv4-64, 28x28, 5-way 1-shot, 15 queries per
    class, meta-batch 4, one inner step, Adam) of this project's `MAML.train_step` against
    the classic "clone-and-adapt" loop written with plain autograd, as learn2learn does it
    (per task: deep-copy the module, make its parameters differentiable clones of the
    originals, ``autograd.grad(create_graph=True)``, write ``p - lr * g`` into the module's
    parameters, run the module), and against the plain `functional_call` loop the first
    `maml.py` used. The classic loop runs twice: on this project's conv4 (channels-last on the
    CPU, `bench.backbones.cpu_layout`) and on the same conv4 in PyTorch's default NCHW layout, as
    a learn2learn user's network runs; the first isolates the meta-step code, the second is what
    a user of the classic loop gets. Gradients of ours and the classic loop are asserted equal
    to 1e-5 (max abs difference) in float64; the float32 difference (other summation orders of the channels-last
    convolutions) is printed. Target (issue 3): ours >= 1.3x the classic loop's steps/s.
    Where CUDA is available the vmap'd meta-batch is timed too.
(b) Memory: peak memory of one meta-step with 10 inner steps at 84x84, 5-way 1-shot, 15
    queries, conv4-32, meta-batch 4: second order, second order with gradient checkpointing,
    first order, and the first maml.py's all-tasks-at-once backward. CPU: peak resident set
    size (``resource.getrusage``) of a fresh subprocess per variant, minus its size before the
    step; CUDA: ``torch.cuda.max_memory_allocated``.

The speed part runs in a process set up as a scheduled job's (`bench.run.worker.configure`: one
torch thread by default, deterministic kernels, glibc keeping freed memory), which every
contender shares. Timings on a shared CPU are noisy: implementations alternate within each
round and the best round of each counts.
Run: ``python benchmarks/bench_maml.py [--rounds 5] [--threads 1] [--no-memory]``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from baselines.maml import MAML, MAMLConfig
from bench.backbones import Conv4, Conv4Config
from bench.data.episodes import Episode
from bench.run.worker import configure
from bench.seeding import generator

MemoryVariants = ("second order", "second order + checkpointing", "first order", "all tasks at once (old maml.py)")


def episodes(size: int, count: int, device: torch.device, dtype: torch.dtype, way: int = 5, shot: int = 1,
             query: int = 15, channels: int = 1) -> list[Episode]:
    """``count`` random episodes (speed and memory do not depend on the pixels); drawn in float32
    and cast, so that every dtype sees the same problem."""
    gen = generator(0)

    def draw(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.rand(way * k, channels, size, size, generator=gen)
        return x.to(device, dtype), torch.arange(way).repeat_interleave(k).to(device)

    return [Episode(*draw(shot), *draw(query)) for _ in range(count)]


def build(config: MAMLConfig, hidden: int, size: int, device: torch.device, dtype: torch.dtype,
          channels: int = 1) -> MAML:
    """MAML on conv4, initialised in float32 from seed 0 and then cast (same weights in any dtype)."""
    torch.manual_seed(0)
    maml = MAML(config, Conv4(Conv4Config(hidden, "batch"), channels, size), 5, device)
    maml.net.to(dtype)  # in place: the optimiser keeps the same parameters
    return maml


def classic_step(net: nn.Module, optimizer: torch.optim.Optimizer, tasks: list[Episode], lr: float) -> None:
    """The clone-and-adapt reference (learn2learn's ``clone()`` + ``adapt()``, written out)."""
    optimizer.zero_grad(set_to_none=True)
    losses = []
    for e in tasks:
        learner = copy.deepcopy(net)
        for module, original in zip(learner.modules(), net.modules(), strict=True):
            for name, p in original._parameters.items():
                if p is not None:
                    module._parameters[name] = p.clone()  # differentiable: gradients reach net
        params = [p for m in learner.modules() for p in m._parameters.values() if p is not None]
        loss = F.cross_entropy(learner(e.support_x), e.support_y)
        grads = dict(zip(params, torch.autograd.grad(loss, params, create_graph=True), strict=True))
        for module in learner.modules():
            for name, p in list(module._parameters.items()):
                if p is not None:
                    module._parameters[name] = p - lr * grads[p]
        losses.append(F.cross_entropy(learner(e.query_x), e.query_y))
    torch.stack(losses).mean().backward()
    optimizer.step()


def functional_loop_step(net: nn.Module, optimizer: torch.optim.Optimizer, tasks: list[Episode], lr: float) -> None:
    """The first maml.py: `functional_call` fast weights, all tasks' graphs kept to one backward."""
    optimizer.zero_grad(set_to_none=True)
    params, losses = dict(net.named_parameters()), []
    for e in tasks:
        loss = F.cross_entropy(functional_call(net, params, (e.support_x,)), e.support_y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        fast = {k: p - lr * g for (k, p), g in zip(params.items(), grads, strict=True)}
        losses.append(F.cross_entropy(functional_call(net, fast, (e.query_x,)), e.query_y))
    torch.stack(losses).mean().backward()
    optimizer.step()


def contenders(config: MAMLConfig, device: torch.device, dtype: torch.dtype) -> dict[str, Callable[[], list]]:
    """name -> a meta-step returning the meta-gradient; all from the same initial weights.

    The meta learning rate is 0, so weights (and gradients) stay comparable across repeats while
    Adam's update is still computed.
    """
    tasks = episodes(28, 4, device, dtype)
    ours = build(dataclasses.replace(config, meta_lr=0.0), 64, 28, device, dtype)

    def reference(step: Callable[..., None], nchw: bool = False) -> Callable[[], list]:
        net = copy.deepcopy(ours.net)
        if nchw:  # the network as a learn2learn user writes it: conv4 in PyTorch's default layout
            net = nn.Sequential(net[0].blocks, nn.Flatten(1), net[1])  # same parameters, same order
        optimizer = torch.optim.Adam(net.parameters(), lr=0.0)
        return lambda: (step(net, optimizer, tasks, config.inner_lr), _grads(net))[1]

    def baseline(maml: MAML) -> Callable[[], list]:
        return lambda: (maml.train_step(tasks), _grads(maml.net))[1]

    out = {"classic clone-and-adapt": reference(classic_step),
           "classic, NCHW network": reference(classic_step, nchw=True),
           "functional_call loop": reference(functional_loop_step), "ours (maml.py)": baseline(ours)}
    if device.type == "cuda":
        vmapped = build(dataclasses.replace(config, meta_lr=0.0, task_batching="vmap"), 64, 28, device, dtype)
        out["ours, vmap over tasks"] = baseline(vmapped)
    return out


def _grads(net: nn.Module) -> list:
    return [p.grad.detach().clone() for p in net.parameters()]


def max_abs_diff(a: list, b: list) -> float:
    return max(float((x - y.to(x.dtype)).abs().max()) for x, y in zip(a, b, strict=True))


def check_gradients(config: MAMLConfig, device: torch.device) -> None:
    """Asserts ours == classic to 1e-5 in float64; prints float32 differences and each float32
    result's error against the float64 classic gradient (the float32 accuracy floor)."""
    truth = contenders(config, device, torch.float64)
    reference = truth["classic clone-and-adapt"]()
    for name, step in truth.items():
        diff = max_abs_diff(step(), reference)
        print(f"  float64 {name:26} max |grad - classic| = {diff:.1e}")
        assert diff < 1e-5, (name, diff)
    single = contenders(config, device, torch.float32)
    classic32 = single["classic clone-and-adapt"]()
    for name, step in single.items():
        grads = step()
        print(f"  float32 {name:26} max |grad - classic| = {max_abs_diff(grads, classic32):.1e}, "
              f"max |grad - float64 truth| = {max_abs_diff([g.double() for g in grads], reference):.1e}")
    print(f"  (largest |grad| {max(float(g.abs().max()) for g in reference):.2f})")


def best_rates(steps: dict[str, Callable[[], list]], rounds: int, device: torch.device) -> dict[str, float]:
    """Best steps/s of each contender; contenders alternate within a round (fair under load)."""
    best = dict.fromkeys(steps, 0.0)
    for step in steps.values():
        step()  # warm-up
    for _ in range(rounds):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = max(best[name], 1.0 / (time.perf_counter() - start))
    return best


def speed(rounds: int, device: torch.device) -> None:
    config = MAMLConfig(inner_lr=0.4, inner_steps=1)
    print(f"(a) MAML second-order meta-step, conv4-64, 28x28, 5-way 1-shot 15 queries, meta-batch 4, "
          f"1 inner step, {device}, {torch.get_num_threads()} threads")
    check_gradients(config, device)
    rates = best_rates(contenders(config, device, torch.float32), rounds, device)
    classic = rates["classic clone-and-adapt"]
    for name, rate in rates.items():
        print(f"  {name:26} {rate:7.2f} steps/s   ratio to classic {rate / classic:5.2f}x")
    for reference in ("classic, NCHW network", "classic clone-and-adapt"):
        ratio = rates["ours (maml.py)"] / rates[reference]
        print(f"  target ours >= 1.3x {reference}: {'met' if ratio >= 1.3 else 'NOT met'} ({ratio:.2f}x)")


def memory_child(variant: str, device: torch.device) -> dict[str, float]:
    """One meta-step of ``variant``; returns the peak memory it added, in MiB."""
    config = MAMLConfig(inner_lr=0.01, inner_steps=10, first_order=variant == "first order",
                        checkpoint_inner=variant.endswith("checkpointing"), task_batching="loop")
    maml = build(config, 32, 84, device, torch.float32, channels=3)
    tasks = episodes(84, 4, device, torch.float32, channels=3)
    before = _rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    start = time.perf_counter()
    if variant.startswith("all tasks"):
        _old_multi_step(maml, tasks, config)
    else:
        maml.train_step(tasks)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else _peak_rss_mib()
    return {"peak_mib": peak - before, "seconds": seconds}


def _old_multi_step(maml: MAML, tasks: list[Episode], config: MAMLConfig) -> None:
    maml.net.train()
    maml.optimizer.zero_grad(set_to_none=True)
    params, losses = dict(maml.net.named_parameters()), []
    for e in tasks:
        fast = params
        for _ in range(config.inner_steps):
            loss = F.cross_entropy(functional_call(maml.net, fast, (e.support_x,)), e.support_y)
            grads = torch.autograd.grad(loss, list(fast.values()), create_graph=True)
            fast = {k: p - config.inner_lr * g for (k, p), g in zip(fast.items(), grads, strict=True)}
        losses.append(F.cross_entropy(functional_call(maml.net, fast, (e.query_x,)), e.query_y))
    torch.stack(losses).mean().backward()
    maml.optimizer.step()


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory(device: torch.device) -> None:
    print(f"(b) peak memory of one meta-step, 10 inner steps, 84x84x3, 5-way 1-shot 15 queries, conv4-32, "
          f"meta-batch 4, {device} ({'max_memory_allocated' if device.type == 'cuda' else 'peak RSS'}, "
          f"fresh process per variant)")
    for variant in MemoryVariants:
        result = subprocess.run([sys.executable, __file__, "--memory-child", variant, "--device", str(device)],
                                capture_output=True, text=True, check=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"  {variant:34} {figures['peak_mib']:8.0f} MiB   {figures['seconds']:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--memory-child", choices=MemoryVariants)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (scheduled jobs use 1)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, device)))
        return
    if not args.no_speed:
        configure(args.threads)  # as a scheduled job's process: threads, determinism, malloc (both contenders)
        speed(args.rounds, device)
    if not args.no_memory:
        memory(device)


if __name__ == "__main__":
    main()
