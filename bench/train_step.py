"""Time one training step of the hand-written reference MLP against the same MLP in torch.nn.

One step = forward + loss + backward + SGD update on one batch of digits, for
    A: solution.MLP (hand-written backward, solution.sgd_step)
    B: torch.nn Linear -> ReLU -> Linear -> Softmax with the same NLL, autograd, torch.optim.SGD
with the same sizes and the same initial weights. A and B alternate step by step in one run
(A, B, B, A, A, B, ...) on the same batches, so drift in machine load hits both; medians over many
reps are reported, with the median of the paired ratios A_i / B_i.

    python bench/train_step.py [--batches 64 512] [--reps 2000] [--threads 1]
"""
import argparse
import statistics
import time

import torch

from solution import HYPERPARAMETERS, MLP, load_digits_split, one_hot, sgd_step


def torch_twin(model):
    """The same network in torch.nn, initialised with a copy of model's weights."""
    net = torch.nn.Sequential(
        torch.nn.Linear(*model.fc1.W.shape), torch.nn.ReLU(),
        torch.nn.Linear(*model.fc2.W.shape), torch.nn.Softmax(dim=1),
    )
    with torch.no_grad():
        for linear, fc in ((net[0], model.fc1), (net[2], model.fc2)):
            linear.weight.copy_(fc.W.T)  # torch.nn stores W as (D_out, D_in)
            linear.bias.copy_(fc.b)
    return net


def hand_written_step(model, lr):
    def step(x, y, labels):
        model.loss(model.forward(x), y)
        model.backward()
        sgd_step(model, lr)
    return step


def autograd_step(net, lr):
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)

    def step(x, y, labels):
        S = net(x)
        L = -S.gather(1, labels[:, None]).log().mean()  # the same NLL: log of the true class only
        optimizer.zero_grad(set_to_none=True)
        L.backward()
        optimizer.step()
    return step


def timed(step, *args):
    start = time.perf_counter()
    step(*args)
    return time.perf_counter() - start


def bench(batch, reps, warmup, hidden, lr, generator):
    """Seconds per step of A and B at one batch size, interleaved on the same batches.

    Returns the median step time of each and the median of the paired ratios A_i / B_i: each pair
    runs back to back, so the paired ratio is the estimate least moved by other load on the machine.
    Which of the two goes first alternates from rep to rep.
    """
    X, labels, _, _ = load_digits_split()
    Y = one_hot(labels, 10)
    model = MLP(X.shape[1], hidden, 10, generator=generator)
    steps = [("hand-written", hand_written_step(model, lr)), ("autograd", autograd_step(torch_twin(model), lr))]
    times = {name: [] for name, _ in steps}
    for rep in range(warmup + reps):
        idx = torch.randint(len(X), (batch,), generator=generator)
        args = (X[idx], Y[idx], labels[idx])
        for name, step in steps if rep % 2 else steps[::-1]:
            seconds = timed(step, *args)
            if rep >= warmup:
                times[name].append(seconds)
    a, b = times["hand-written"], times["autograd"]
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 512], help="batch sizes to time")
    parser.add_argument("--reps", type=int, default=2000, help="timed steps of each model per batch size")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads, for both models")
    parser.add_argument("--hidden", type=int, default=HYPERPARAMETERS["hidden"], help="hidden units")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    print(f"MLP 64 -> {args.hidden} -> 10, float32, {args.threads} thread(s), torch {torch.__version__}, "
          f"median of {args.reps} interleaved steps")
    print(f"{'batch':>6} {'hand-written':>14} {'autograd':>12} {'ratio of medians':>17} {'median paired ratio':>20}")
    for batch in args.batches:
        a, b, paired = bench(batch, args.reps, args.warmup, args.hidden, HYPERPARAMETERS["lr"], generator)
        print(f"{batch:>6} {a * 1e6:>11.1f} us {b * 1e6:>9.1f} us {a / b:>17.2f} {paired:>20.2f}")


if __name__ == "__main__":
    main()
