"""torch.where everywhere: ReLU, and an NLL that also works for soft labels.

Demonstrates: ReLU forward / backward as torch.where against zeros_like (gradient 0 at h = 0), and
NLL as -(1/N) sum y log S where the log is only taken where y > 0 (the masked-out branch may hold
-inf or nan, which where discards), with the gradient -y / (N S) likewise only where y > 0.
"""
import torch


class ReLU:
    def forward(self, h):
        self.positive = h > 0
        return torch.where(self.positive, h, torch.zeros_like(h))

    def backward(self, dr):
        return torch.where(self.positive, dr, torch.zeros_like(dr))


class NLLLoss:
    def forward(self, S, y):
        self.S, self.y = S, y
        terms = torch.where(y > 0, y * torch.log(S), torch.zeros_like(S))
        return -terms.sum() / S.shape[0]

    def backward(self):
        S, y = self.S, self.y
        return torch.where(y > 0, -y / (S.shape[0] * S), torch.zeros_like(S))
