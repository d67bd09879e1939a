"""Single-bug mutations of the reference layers (the source notebook's answer cells): the mistakes
students really make.

Each Mutation replaces one snippet `old`, which occurs exactly once in the reference source, by its
buggy version `new`. `part` is the part whose hidden checks must catch it: that part loses points,
the other three layer parts lose none (train may lose points too). `why` names the mistake and the
rule it breaks (DESIGN §1), as a grader's feedback would.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    part: str  # linear | relu | softmax | nll
    old: str
    new: str
    why: str


# Reference snippets that several mutations replace.
LINEAR_FORWARD = "return x @ self.W + self.b"
LINEAR_DX = "return dh @ self.W.T"
LINEAR_DW = "self.dW = (dh.T @ self.x).T"
LINEAR_DB = "self.db = dh.sum(dim=0)"
RELU_FORWARD = "return h.clamp(min=0)"
RELU_BACKWARD = "return dr * self.h.sign().clamp(min=0)"
SOFTMAX_SHIFT = "z = r - r.max(dim=1, keepdim=True).values"
SOFTMAX_NORMALISE = "self.S = e / e.sum(dim=1, keepdim=True)"
SOFTMAX_BACKWARD = "return S * (dS - (dS * S).sum(dim=1, keepdim=True))"
NLL_FORWARD = "return -self.p.log().mean()"
NLL_GRAD = "dS[self.rows, self.labels] = -1 / (N * self.p)"
NLL_BUFFER = "dS = torch.zeros_like(self.S)"
SOFTMAX_FORWARD = (SOFTMAX_SHIFT + "  # the row maximum becomes e^0 = 1: no overflow\n        e = z.exp()\n        "
                   + SOFTMAX_NORMALISE)

MUTATIONS = [
    # --- Linear ------------------------------------------------------------------------------
    Mutation("linear_db_keepdim", "linear", LINEAR_DB, "self.db = dh.sum(dim=0, keepdim=True)",
             "db has shape (1, D_out) instead of (D_out,) (rule 1)"),
    Mutation("linear_db_mean", "linear", LINEAR_DB, "self.db = dh.mean(dim=0)",
             "db averages the rows: the 1/N belongs to the loss, not to db (rule 3)"),
    Mutation("linear_dW_transposed", "linear", LINEAR_DW, "self.dW = dh.T @ self.x",
             "dW is dh^T x, shape (D_out, D_in), instead of x^T dh (rules 1, 3)"),
    Mutation("linear_dW_divided_by_N", "linear", LINEAR_DW, "self.dW = (dh.T @ self.x).T / len(dh)",
             "dW divides by N a second time (rule 3)"),
    Mutation("linear_dW_sign", "linear", LINEAR_DW, "self.dW = -(dh.T @ self.x).T",
             "dW has the wrong sign: the descent step belongs to SGD, not to the gradient (rule 3)"),
    Mutation("linear_dx_uses_W", "linear", LINEAR_DX, "return dh @ self.W",
             "dx multiplies by W instead of W^T: fails for non-square W (rules 1, 3)"),
    Mutation("linear_forgets_bias", "linear", LINEAR_FORWARD, "return x @ self.W",
             "forward forgets the bias b (rule 3)"),
    Mutation("linear_forward_squeezes", "linear", LINEAR_FORWARD, "return (x @ self.W + self.b).squeeze()",
             "forward squeezes h: a single example comes back as (D_out,) (rule 1, any N >= 1)"),
    Mutation("linear_forward_float64", "linear", LINEAR_FORWARD,
             "return x.double() @ self.W.double() + self.b.double()",
             "forward computes in float64 'for precision': float32 in gives float64 out (rule 2)"),
    Mutation("linear_db_float64", "linear", LINEAR_DB, "self.db = dh.sum(dim=0, dtype=torch.float64)",
             "db accumulated in float64: float32 in gives a float64 db (rule 2)"),
    Mutation("linear_dW_accumulates", "linear", LINEAR_DW,
             "self.dW = (0 if self.dW is None else self.dW) + (dh.T @ self.x).T",
             "dW accumulates over backward calls, micrograd style (rule 7)"),
    Mutation("linear_db_accumulates", "linear", LINEAR_DB,
             "self.db = dh.sum(dim=0) if self.db is None else self.db + dh.sum(dim=0)",
             "db accumulates over backward calls (rule 7)"),
    Mutation("linear_transposes_x_in_place", "linear", LINEAR_DW, "self.dW = self.x.t_() @ dh",
             "t_() transposes the caller's x in place (rule 6; a second backward then breaks, rule 7)"),
    Mutation("linear_forgets_to_store_x", "linear", "        self.x = x\n", "",
             "forward does not keep x, so backward has nothing to compute dW from (rule 3)"),
    # --- ReLU --------------------------------------------------------------------------------
    Mutation("relu_gradient_one_at_zero", "relu", RELU_BACKWARD, "return dr * (self.h >= 0)",
             "the mask is h >= 0: the gradient at exactly h = 0 is 1 instead of 0 (rule 4)"),
    Mutation("relu_forward_clamps_in_place", "relu", RELU_FORWARD, "return h.clamp_(min=0)",
             "clamp_ overwrites the caller's h (rule 6)"),
    Mutation("relu_forward_masks_in_place", "relu", RELU_FORWARD, "h[h < 0] = 0\n        return h",
             "h[h < 0] = 0 overwrites the caller's h (rule 6)"),
    Mutation("relu_backward_masks_upstream_in_place", "relu", RELU_BACKWARD,
             "dr[self.h <= 0] = 0\n        return dr",
             "CS231n-style dx = dout; dx[x <= 0] = 0 overwrites the upstream gradient (rule 6)"),
    Mutation("relu_backward_forgets_upstream", "relu", RELU_BACKWARD, "return self.h.sign().clamp(min=0)",
             "backward returns the local derivative only, without multiplying by dr (rule 3)"),
    Mutation("relu_backward_float64_mask", "relu", RELU_BACKWARD, "return dr * (self.h > 0).double()",
             "the mask is made float64: float32 in gives float64 out (rule 2)"),
    # --- Softmax -----------------------------------------------------------------------------
    Mutation("softmax_normalises_columns", "softmax", SOFTMAX_NORMALISE,
             "self.S = e / e.sum(dim=0, keepdim=True)",
             "softmax along dim 0: columns sum to 1, not rows (rule 3)"),
    Mutation("softmax_no_max_subtraction", "softmax", SOFTMAX_SHIFT, "z = r",
             "no max subtraction: exp overflows for logits around +1000 and gives nan (rule 5)"),
    Mutation("softmax_global_max", "softmax", SOFTMAX_SHIFT, "z = r - r.max()",
             "subtracts the max of the whole batch: rows 2000 below it underflow to 0/0 (rule 5)"),
    Mutation("softmax_max_without_keepdim", "softmax", SOFTMAX_SHIFT, "z = r - r.max(dim=1).values",
             "the row max without keepdim broadcasts along the wrong axis (rules 1, 3)"),
    Mutation("softmax_shifts_logits_in_place", "softmax", SOFTMAX_SHIFT,
             "r -= r.max(dim=1, keepdim=True).values\n        z = r",
             "r -= max shifts the caller's logits in place (rule 6)"),
    Mutation("softmax_forward_float64", "softmax", "e = z.exp()", "e = z.double().exp()",
             "exp in float64 'for stability': float32 in gives float64 out (rule 2)"),
    Mutation("softmax_backward_diagonal_only", "softmax", SOFTMAX_BACKWARD, "return S * (1 - S) * dS",
             "uses only the Jacobian's diagonal S(1 - S), dropping the -S_i S_j terms (rule 3)"),
    Mutation("softmax_backward_sums_columns", "softmax", SOFTMAX_BACKWARD,
             "return S * (dS - (dS * S).sum(dim=0, keepdim=True))",
             "the inner product <dS, S> is summed over the batch instead of over classes (rule 3)"),
    Mutation("softmax_backward_sign", "softmax", SOFTMAX_BACKWARD,
             "return S * ((dS * S).sum(dim=1, keepdim=True) - dS)",
             "the vector-Jacobian product has the wrong sign (rule 3)"),
    Mutation("softmax_backward_updates_upstream_in_place", "softmax", SOFTMAX_BACKWARD,
             "dS -= (dS * S).sum(dim=1, keepdim=True)\n        return S * dS",
             "dS -= ... overwrites the upstream gradient (rule 6)"),
    # --- NLLLoss -----------------------------------------------------------------------------
    Mutation("nll_sum_not_mean", "nll", NLL_FORWARD, "return -self.p.log().sum()",
             "the loss sums over examples instead of averaging: missing 1/N (rule 3)"),
    Mutation("nll_per_example", "nll", NLL_FORWARD, "return -self.p.log()",
             "forgets the mean: returns the (N,) per-example losses, not a 0-dim L (rule 1)"),
    Mutation("nll_shape_one", "nll", NLL_FORWARD, "return -self.p.log().mean(dim=0, keepdim=True)",
             "mean with keepdim: L has shape (1,), not the 0-dim tensor asked for (rule 1)"),
    Mutation("nll_naive_log", "nll", NLL_FORWARD, "return -(y * S.log()).sum() / S.shape[0]",
             "y * log S everywhere: 0 * log 0 = nan where S has exact zeros (rule 5)"),
    Mutation("nll_python_float", "nll", NLL_FORWARD, "return torch.tensor(-self.p.log().mean().item())",
             "goes through a Python float: L comes back float32 for float64 inputs (rule 2)"),
    Mutation("nll_labels_from_prediction", "nll", "self.labels = y.argmax(dim=1)",
             "self.labels = S.argmax(dim=1)",
             "takes the predicted class from S instead of the true class from y (rule 3)"),
    Mutation("nll_backward_missing_1_over_N", "nll", NLL_GRAD,
             "dS[self.rows, self.labels] = -1 / self.p",
             "the gradient forgets the 1/N of the mean (rule 3)"),
    Mutation("nll_backward_sign", "nll", NLL_GRAD, "dS[self.rows, self.labels] = 1 / (N * self.p)",
             "the gradient of -log has lost its minus sign (rule 3)"),
    Mutation("nll_backward_divides_everywhere", "nll", NLL_GRAD,
             "dS[self.rows, self.labels] = 1\n        dS = -dS / (N * self.S)",
             "-y / (N S) over every entry: 0/0 = nan where S has exact zeros (rule 5)"),
    Mutation("nll_backward_float32_buffer", "nll", NLL_BUFFER, "dS = torch.zeros(self.S.shape)",
             "torch.zeros(shape) is float32 whatever the input: for float64 inputs the float64 "
             "gradient cannot be written into it (rule 2)"),
    Mutation("nll_backward_reuses_S", "nll", NLL_BUFFER, "dS = self.S.zero_()",
             "zero_() reuses S as the gradient buffer, wiping the caller's S (rule 6)"),
    Mutation("nll_backward_accumulates", "nll",
             NLL_BUFFER + "\n        " + NLL_GRAD,
             "if not hasattr(self, 'dS'):\n            self.dS = torch.zeros_like(self.S)\n"
             "        self.dS[self.rows, self.labels] -= 1 / (N * self.p)\n        dS = self.dS",
             "keeps one gradient buffer and accumulates into it on every backward call (rule 7)"),
    Mutation("nll_clamps_S_in_place", "nll", "self.S = S", "self.S = S.clamp_(min=1e-12)",
             "clamps S in place 'to avoid log(0)': the caller's S changes where it held zeros (rule 6)"),
    Mutation("nll_nudges_S_in_place", "nll", "self.S = S", "self.S = S.add_(1e-12)",
             "adds an epsilon to S in place: every entry of the caller's S changes a little (rule 6)"),
    # --- real mistakes (issue 23): two catalogue mistakes at once, the wrong layer's gradient, ...
    Mutation("nll_backward_minus_y_over_S", "nll", NLL_BUFFER + "\n        " + NLL_GRAD,
             "dS = torch.zeros_like(self.S)\n        dS[self.rows, self.labels] = 1\n        dS = -dS / self.S",
             "-y / S: lacks the 1/N of the mean and divides everywhere, 0/0 = nan where S has exact zeros (rules 3, 5)"),
    Mutation("nll_summed_naive_log", "nll", NLL_FORWARD, "return -(y * S.log()).sum()",
             "sums y log S over every entry: no 1/N, and 0 * log 0 = nan where S has exact zeros (rules 3, 5)"),
    Mutation("nll_backward_logits_gradient_mean", "nll", NLL_BUFFER + "\n        " + NLL_GRAD,
             "dS = self.S.clone()\n        dS[self.rows, self.labels] -= 1\n        dS = dS / N",
             "returns (S - y)/N, the gradient with respect to the logits, as NLLLoss's dS (rule 3)"),
    Mutation("nll_backward_logits_gradient", "nll", NLL_BUFFER + "\n        " + NLL_GRAD,
             "dS = self.S.clone()\n        dS[self.rows, self.labels] -= 1",
             "returns S - y, the gradient of a summed loss with respect to the logits, as NLLLoss's dS (rule 3)"),
    Mutation("nll_log_eps_from_numpy", "nll", NLL_FORWARD,
             "return -(self.p + torch.as_tensor([__import__('numpy').finfo(float).eps])).log().mean()",
             "an epsilon from NumPy as a float64 tensor: float32 in gives float64 out (rule 2)"),
    Mutation("softmax_normalises_batch", "softmax", SOFTMAX_FORWARD,
             "z = r - r.max()\n        e = z.exp()\n        self.S = e / e.sum()",
             "numpy-style softmax over the whole batch: one max, one sum for every entry (rule 3)"),
    Mutation("softmax_normalises_batch_row_max", "softmax", SOFTMAX_NORMALISE, "self.S = e / e.sum()",
             "each row shifted by its max, then divided by the sum over the whole batch (rule 3)"),
    Mutation("softmax_column_softmax", "softmax", SOFTMAX_FORWARD,
             "z = r - r.max(dim=0, keepdim=True).values\n        e = z.exp()\n        self.S = e / e.sum(dim=0, keepdim=True)",
             "a stable softmax of each column: the columns sum to 1, not the rows (rule 3)"),
    Mutation("softmax_column_softmax_unshifted", "softmax", SOFTMAX_FORWARD,
             "e = r.exp()\n        self.S = e / e.sum(dim=0, keepdim=True)",
             "a softmax of each column with no maximum subtracted: columns sum to 1, exp overflows (rules 3, 5)"),
    Mutation("linear_dW_accumulates_in_float32_buffer", "linear", LINEAR_DW,
             "if self.dW is None:\n            self.dW = torch.zeros(self.W.shape)\n        self.dW += (dh.T @ self.x).T",
             "a float32 buffer made once and added to on every call: float64 in gives a float32 dW, and a second "
             "call doubles it (rules 2, 7)"),
    Mutation("nll_backward_accumulates_in_float32_buffer", "nll", NLL_BUFFER + "\n        " + NLL_GRAD,
             "if not hasattr(self, 'buffer'):\n            self.buffer = torch.zeros(self.S.shape)\n"
             "        self.buffer[self.rows, self.labels] -= 1 / (N * self.p)\n        dS = self.buffer",
             "a float32 gradient buffer kept on the object and subtracted from: float64 in gives a float32 dS, "
             "and a second call doubles it (rules 2, 7)"),
    Mutation("nll_mean_over_classes", "nll", NLL_FORWARD, "return -self.p.log().sum() / self.S.shape[1]",
             "divides the summed loss by C, the number of classes, where N belongs (rule 3)"),
    Mutation("nll_backward_sums_into_float32_buffer", "nll", NLL_BUFFER + "\n        " + NLL_GRAD,
             "if not hasattr(self, 'buffer'):\n            self.buffer = torch.zeros(self.S.shape)\n"
             "        self.buffer[self.rows, self.labels] -= 1 / self.p\n        dS = self.buffer",
             "micrograd style: a float32 buffer subtracted from on every call, and no 1/N (rules 2, 3, 7)"),
    Mutation("nll_backward_no_mask", "nll", NLL_BUFFER + "\n        " + NLL_GRAD, "dS = -1 / (N * self.S)",
             "-1/(N S) at every entry: off the true class dS must be 0, and exact zeros give -inf (rules 3, 5)"),
    Mutation("nll_backward_masks_by_S", "nll", NLL_BUFFER + "\n        " + NLL_GRAD,
             "dS = -1 / (N * self.S)\n        dS[self.S == 0] = 0",
             "masks where S is 0 instead of where y is 0 (rule 3)"),
    Mutation("nll_log_of_mean", "nll", NLL_FORWARD, "return -self.p.mean().log()",
             "the log of the mean probability instead of the mean of the logs (rule 3)"),
    Mutation("nll_log10", "nll", NLL_FORWARD, "return -self.p.log10().mean()",
             "log10 where the natural log belongs (rule 3)"),
    Mutation("softmax_normalises_batch_unshifted", "softmax", SOFTMAX_FORWARD,
             "e = r.exp()\n        self.S = e / e.sum()",
             "exp(r) over its sum over the whole batch, nothing subtracted (rules 3, 5)"),
    Mutation("softmax_backward_sums_everything", "softmax", SOFTMAX_BACKWARD, "return dS * S - S * (dS * S).sum()",
             "the inner product summed over the whole batch (rule 3)"),
]
