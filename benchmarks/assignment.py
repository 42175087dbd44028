"""Benchmark: where one batched w2 ensemble step goes, and what the exact assignments cost.

1. Phase timers around one training step of ``fit_ensemble``'s w2 path (the same calls, in the same
   order: latent and data draws, stacked forward, float64 cost matrices, exact assignments, matched-pair
   loss, backward, Adam, scheduler) for B = 16 restarts of a width-16 MLP and for B = 1, on the 8-mode
   ring (n = 2000), batch 64. The loop of single fits pays the B = 1 step per member, so
   ``16 x (B = 1 step) / (B = 16 step)`` is the batching gain, and ``2 cores x (B = 1 step) / (one
   assignment)`` is its ceiling when everything but the assignments cost nothing.
2. Exact assignment solvers on the cost matrices met in training (recorded from the last 20 steps of a
   16-member fit): lapx's ``lapjvh`` (the one used), its other Jonker-Volgenant variants and their batch
   forms, scipy's ``linear_sum_assignment``, and, when importable, the ``lapjv`` package and OR-Tools'
   ``SimpleLinearSumAssignment`` (integer costs: scaled by 1e9 and rounded). Each solver's total cost is
   checked against scipy's optimum.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/assignment.py [--reps 300] [--ot-threads 2]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

import latentdist.distances.minibatch as minibatch
from latentdist._seeding import make_torch_generator
from latentdist.data import make_dataset
from latentdist.ensemble import fit_ensemble
from latentdist.fitting import member_seeds
from latentdist.generators import MLP
from latentdist.latents import Gaussian
from latentdist.optim import make_optimizer
from latentdist.stacked import make_generators

PHASES = ("draw", "forward", "costs", "assign", "loss", "backward", "adam", "sched")


def phase_times(x: torch.Tensor, members: int, reps: int, batch: int = 64) -> dict[str, float]:
    """Mean microseconds per step of each phase of a w2 ensemble step (``_train_group``'s calls)."""
    latent = Gaussian(2)
    streams = [member_seeds(s) for s in range(members)]
    gens = make_generators(MLP(depth=2).at([16] * members), [s["init"] for s in streams], 2, 2,
                           torch.device("cpu"))
    z_gens = [make_torch_generator(s["z"]) for s in streams]
    x_gens = [make_torch_generator(s["x"]) for s in streams]
    opt, sched = make_optimizer(gens.parameters(), 1e-2, schedule="cosine_floor", steps=reps, foreach=True)
    total = dict.fromkeys(PHASES, 0.0)
    for _ in range(reps):
        marks = [time.perf_counter()]
        z = latent.sample_each(batch, z_gens)
        xb = x[torch.stack([torch.randint(x.shape[0], (batch,), generator=g) for g in x_gens])]
        marks.append(time.perf_counter())
        y = gens(z)
        marks.append(time.perf_counter())
        cost = minibatch._plan_costs(y, xb, 2.0)  # ot_plan_loss's steps, called one by one to time them
        marks.append(time.perf_counter())
        cols = torch.as_tensor(minibatch.assignments(cost))
        marks.append(time.perf_counter())
        loss = ((y - torch.gather(xb, 1, cols[:, :, None].expand(-1, -1, 2))) ** 2).sum(-1).mean(1)
        marks.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        marks.append(time.perf_counter())
        opt.step()
        marks.append(time.perf_counter())
        sched.step()
        loss.detach().numpy()
        marks.append(time.perf_counter())
        for name, a, b in zip(PHASES, marks, marks[1:], strict=False):
            total[name] += b - a
    return {k: 1e6 * v / reps for k, v in total.items()}


def recorded_costs(x: torch.Tensor, steps: int = 300, keep: int = 20) -> np.ndarray:
    """The (16 x keep, 64, 64) cost matrices of the last ``keep`` steps of a 16-restart w2 fit."""
    seen = []
    solve = minibatch.assignments

    def spy(costs: np.ndarray) -> np.ndarray:
        seen.append(costs.copy())
        return solve(costs)

    minibatch.assignments = spy
    try:
        fit_ensemble(MLP(depth=2).at([16] * 16), list(range(16)), Gaussian(2), x, "w2", steps=steps,
                     progress=False)
    finally:
        minibatch.assignments = solve
    return np.concatenate(seen[-keep:])


def solvers() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Exact single-problem solvers available here: name -> (cost -> column of each row)."""
    import lap

    found = {
        "lapx lapjvh (used)": lambda c: lap.lapjvh(c, return_cost=False)[1],
        "lapx lapjvr": lambda c: lap.lapjvr(c, return_cost=False)[1],
        "lapx lapjv": lambda c: lap.lapjv(c, return_cost=False)[0],
        "lapx lapjvx": lambda c: lap.lapjvx(c, return_cost=False)[1],
        "lapx lapjvc": lambda c: lap.lapjvc(c, return_cost=False)[1],
        "lapx lapjvs (float32)": lambda c: lap.lapjvs(c, return_cost=False)[1],
        "scipy linear_sum_assignment": lambda c: linear_sum_assignment(c)[1],
    }
    try:
        import lapjv as lapjv_package

        found["lapjv package"] = lambda c: lapjv_package.lapjv(c)[0]
    except ImportError:
        pass
    try:
        from ortools.graph.python import linear_sum_assignment as ortools_lsa

        def ortools(c: np.ndarray) -> np.ndarray:
            m = c.shape[0]
            rows, cols = np.divmod(np.arange(m * m), m)
            solver = ortools_lsa.SimpleLinearSumAssignment()
            solver.add_arcs_with_cost(rows, cols, np.round(c.ravel() * 1e9).astype(np.int64))
            solver.solve()
            return np.array([solver.right_mate(i) for i in range(m)])

        found["OR-Tools (integer costs x 1e9)"] = ortools
    except ImportError:
        pass
    return found


def time_solvers(costs: np.ndarray) -> None:
    """Microseconds per problem of each solver, and whether every plan attains scipy's optimum."""
    import lap

    rows = np.arange(costs.shape[1])
    best = np.array([c[rows, linear_sum_assignment(c)[1]].sum() for c in costs])
    for name, solve in solvers().items():
        solve(costs[0])
        t0 = time.perf_counter()
        plans = [solve(c) for c in costs]
        per = (time.perf_counter() - t0) / len(costs)
        got = np.array([c[rows, p].sum() for c, p in zip(costs, plans, strict=True)])
        gap = float(np.max((got - best) / best))
        print(f"  {name:32s} {1e6 * per:7.1f} us/problem, worst relative excess over the optimum {gap:.1e}")
    for threads in (1, 2):
        lap.lapjvh_batch(costs[:16], return_cost=False, n_threads=threads)
        t0 = time.perf_counter()
        lap.lapjvh_batch(costs, return_cost=False, n_threads=threads)
        per = (time.perf_counter() - t0) / len(costs)
        print(f"  {'lapx lapjvh_batch, ' + str(threads) + ' threads':32s} {1e6 * per:7.1f} us/problem (wall)")
    t0 = time.perf_counter()
    for start in range(0, len(costs), 16):
        minibatch.assignments(costs[start:start + 16])
    per = (time.perf_counter() - t0) / len(costs)
    print(f"  {'latentdist assignments, 16 a call':32s} {1e6 * per:7.1f} us/problem (wall, "
          f"{minibatch._pool_workers(16)} threads)")


def timeit_one(costs: np.ndarray) -> float:
    """Microseconds per problem of lapx's ``lapjvh`` in one thread, all problems in one C call."""
    import lap

    t0 = time.perf_counter()
    lap.lapjvh_batch(costs, return_cost=False, n_threads=1)
    return 1e6 * (time.perf_counter() - t0) / len(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300, help="training steps timed per configuration")
    parser.add_argument("--ot-threads", type=int, default=None)
    args = parser.parse_args()
    minibatch.OT_THREADS = args.ot_threads
    torch.set_num_threads(1)  # as fit_ensemble does while the assignment pool runs
    x = torch.as_tensor(make_dataset("gaussian_mixture_ring", 2000, seed=0).x, dtype=torch.float32)
    print(f"torch {torch.__version__}, OT threads {minibatch._pool_workers(16)}, load average "
          f"{os.getloadavg()[0]:.1f}")

    phase_times(x, 16, 50)  # warm-up
    steps = {b: phase_times(x, b, args.reps) for b in (16, 1)}
    print("phase (us per step)  " + "  ".join(f"{p:>8s}" for p in PHASES) + "     total")
    for b, t in steps.items():
        print(f"B = {b:2d}               " + "  ".join(f"{t[p]:8.0f}" for p in PHASES)
              + f"  {sum(t.values()):8.0f}")
    one, many = sum(steps[1].values()), sum(steps[16].values())
    costs = recorded_costs(x)
    single = min(timeit_one(costs) for _ in range(3))
    chain = sum(steps[16][p] for p in ("forward", "costs", "loss", "backward", "adam"))  # needs the plans
    print(f"batching gain 16 x {one:.0f} / {many:.0f} = {16 * one / many:.2f}x; one assignment alone "
          f"{single:.0f} us -> ceiling with 2 cores and nothing else: 2 x {one:.0f} / {single:.0f} = "
          f"{2 * one / single:.1f}x; with the dependent chain (forward, costs, loss, backward, Adam) kept: "
          f"16 x {one:.0f} / ({chain:.0f} + 8 x {single:.0f}) = {16 * one / (chain + 8 * single):.1f}x")
    print(f"exact solvers on {len(costs)} recorded 64 x 64 training cost matrices:")
    time_solvers(costs)


if __name__ == "__main__":
    main()
