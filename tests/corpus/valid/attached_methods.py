"""Methods attached after the class, a namedtuple cache and an Enum: notebook habits.

Demonstrates: a method written in a later cell and attached with `ReLU.backward = ...` (setting an
attribute on a class), a `collections.namedtuple` and an `enum.Enum` made while the cells load
(the standard library reads its caller's frame to name them), and `functools.wraps`. None of it
may raise an instructor notice (the audit hook watches frames and class changes).
"""
import collections
import enum
import functools

import torch

Cache = collections.namedtuple("Cache", ["x", "mask"])


class Stage(enum.Enum):
    FORWARD = 1
    BACKWARD = 2


def traced(method):
    @functools.wraps(method)
    def wrapper(self, *args):
        self.stage = Stage.FORWARD if method.__name__ == "forward" else Stage.BACKWARD
        return method(self, *args)

    return wrapper


class ReLU:
    @traced
    def forward(self, h):
        self.cache = Cache(h, h > 0)
        return torch.where(self.cache.mask, h, torch.zeros_like(h))


def _relu_backward(self, dr):
    return torch.where(self.cache.mask, dr, torch.zeros_like(dr))


ReLU.backward = traced(_relu_backward)
