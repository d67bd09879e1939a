"""The train check's loop: a probe's "train" step, run in the sandbox with the student's four classes
and in the parent, the same way, with the reference layers.

The parent sends the initial weights (drawn from the course secret), the training inputs with
one-hot targets and the seed of the batch order; this returns the parameters at a few points of
the training run. The parent compares them with the same run by the reference layers from the same
start and evaluates the last ones on test digits the child never sees (checks/train.py).

Each output that another step consumes is checked as it comes back (a tensor of the dtype and shape
the next step needs), so a broken chain is blamed on the method that broke it, not on the next
layer that trips over its output.
"""
from __future__ import annotations

import torch

MLP_CLASSES = ("Linear", "ReLU", "Softmax", "NLLLoss")  # the student's classes the MLP is built from
PARAMETERS = ("W1", "b1", "W2", "b2")
# Where the parameters are sampled for the trajectory, as suffixes of their names: after the first
# step, and after each of the first two epochs (an epoch's last batch is the short one when the batch
# size does not divide the samples). Not later: at lr 1, float rounding of correct layers grows from
# ~1e-6 there to ~1e-2 by the eighth epoch. The final parameters come back too (W1, b1, W2, b2).
SAMPLES = ("_step1", "_epoch1", "_epoch2")


class BrokenChain(Exception):
    """A method returned what the next step of training cannot use; `where` names the method."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where


def _describe(value) -> str:
    if issubclass(type(value), torch.Tensor):
        return f"{str(value.dtype).replace('torch.', '')} {tuple(value.shape)}"
    return "None" if value is None else f"a {type(value).__name__}, not a tensor"


def _fits(value, dtype: torch.dtype, *shapes: tuple) -> bool:
    return issubclass(type(value), torch.Tensor) and value.dtype == dtype and tuple(value.shape) in shapes


def _broken(where: str, what: str, value, wanted: torch.Tensor, why: str) -> BrokenChain:
    """what: "returned dS as"; wanted: a tensor of the dtype and shape training needs there."""
    return BrokenChain(where, f"{what} {_describe(value)} where training needs {_describe(wanted)} ({why})")


def train_mlp(classes: dict, tensors: dict, params: dict, call) -> dict:
    """Linear -> ReLU -> Linear -> Softmax with NLL loss, minibatch SGD, fixed order from `seed`.

    tensors: X (N, D), Y one-hot (N, C), W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)
    params: epochs, batch_size, lr, seed, guarded_epochs (the first epochs whose calls go through `call`)
    Returns: the parameters at each of SAMPLES ({"W1_step1", ..., "W1_epoch1", ...}) and at the end
    ({"W1", ...}); a sample the run did not reach is the final parameters.
    Raises BrokenChain when a method's output cannot feed the next step.
    """

    def step(where, fn, *args):
        return call(where, fn, list(args))

    layers = [classes["Linear"], classes["ReLU"], classes["Linear"], classes["Softmax"]]
    hidden, classes_out = tensors["W1"].shape[1], tensors["W2"].shape[1]
    first = step("Linear.__init__", layers[0], tensors["W1"].shape[0], hidden)
    second = step("Linear.__init__", layers[2], hidden, classes_out)
    first.W, first.b, second.W, second.b = tensors["W1"], tensors["b1"], tensors["W2"], tensors["b2"]
    model = [first, step("ReLU.__init__", layers[1]), second, step("Softmax.__init__", layers[3])]
    loss = step("NLLLoss.__init__", classes["NLLLoss"])
    # each Linear's starting parameters: the dtype and shape its gradients must have
    # (by id: a student's class may define __eq__ and no __hash__)
    parameters_of = {id(first): (tensors["W1"], tensors["b1"]), id(second): (tensors["W2"], tensors["b2"])}

    widths = (hidden, None, classes_out, None)  # a Linear's output width; the others keep their input's

    def forward(x):
        inputs = []
        for layer, width in zip(model, widths):
            inputs.append(x)
            where = f"{type(layer).__name__}.forward"
            x = step(where, layer.forward, x)
            width = width or inputs[-1].shape[1]
            if not _fits(x, inputs[-1].dtype, (len(inputs[-1]), width)):
                wanted = inputs[-1].new_empty(len(inputs[-1]), width)
                raise _broken(where, "returned", x, wanted, f"from an input {_describe(inputs[-1])}")
        return x, inputs

    def backward(S, inputs):
        grad = step("NLLLoss.backward", loss.backward)
        if not _fits(grad, S.dtype, tuple(S.shape)):
            raise _broken("NLLLoss.backward", "returned dS as", grad, S, "the dtype and shape of S")
        for layer, x in zip(reversed(model), reversed(inputs)):
            where, upstream = f"{type(layer).__name__}.backward", grad
            grad = step(where, layer.backward, upstream)
            if id(layer) in parameters_of:
                W, b = parameters_of[id(layer)]
                # the update's own shapes: a bias gradient kept as (1, H) updates a (H,) bias as well
                dW, db = getattr(layer, "dW", None), getattr(layer, "db", None)
                if not _fits(dW, W.dtype, tuple(W.shape)):
                    raise _broken(where, "set dW to", dW, W, "the dtype and shape of W")
                if not _fits(db, b.dtype, tuple(b.shape), (1, *b.shape)):
                    raise _broken(where, "set db to", db, b, "the dtype and shape of b")
            if layer is first:  # the first layer's input gradient feeds nothing
                break
            if not _fits(grad, x.dtype, tuple(x.shape)):
                raise _broken(where, "returned", grad, x, f"the dtype and shape of its input, from an upstream "
                                                         f"gradient {_describe(upstream)}")

    def parameters(suffix=""):
        # clones: a layer may still change its tensors in place later
        return {f"{name}{suffix}": value.clone() if issubclass(type(value), torch.Tensor) else value
                for name, value in zip(PARAMETERS, (first.W, first.b, second.W, second.b))}

    X, Y = tensors["X"], tensors["Y"]
    order = torch.Generator().manual_seed(params["seed"])
    sampled: dict = {}
    for epoch in range(params["epochs"]):
        if epoch == params["guarded_epochs"]:  # the same code runs every step: the guard has seen it
            call = _unguarded
        for batch in torch.randperm(len(X), generator=order).split(params["batch_size"]):
            # index_select: the same rows as X[batch], copied twice as fast (advanced indexing
            # goes through the general element-wise index kernel)
            S, inputs = forward(X.index_select(0, batch))
            step("NLLLoss.forward", loss.forward, S, Y.index_select(0, batch))
            backward(S, inputs)
            for linear in (first, second):
                linear.W = linear.W - params["lr"] * linear.dW
                linear.b = linear.b - params["lr"] * linear.db
            if not sampled:
                sampled.update(parameters(SAMPLES[0]))
        if f"_epoch{epoch + 1}" in SAMPLES:
            sampled.update(parameters(f"_epoch{epoch + 1}"))
    final = parameters()
    unreached = {f"{name}{suffix}": value for suffix in SAMPLES for name, value in final.items()}
    return {**unreached, **sampled, **final}


def _unguarded(where, fn, args):
    return fn(*args)
