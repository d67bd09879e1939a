"""Attack (#22 item 2), appended to forbidden_autograd_popped.py: the same backwards by autograd,
with both halves of the guard popped (the names of the operation guard's switch built at run time),
so nothing that runs is seen.

Expected: the checks still pass (the guard lives in the child, which student code controls), but
the instructor is told: the switch was used by student code, and the gradients the backwards
return were made by no operation the guard saw (provenance).
"""
_dispatch = getattr(getattr(torch, "utils"), "_python" + "_dispatch")
_SWITCHES.append(getattr(_dispatch, "_pop_mode" + "_temporarily"))
