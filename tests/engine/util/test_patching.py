"""patched() puts stand-ins in place and always takes them off: submodules, methods and list items."""

import pytest
import torch

from engine.util.patching import patched


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Linear(2, 2)
        self.scale = 1.0

    def project(self, x):
        return x


def test_stand_ins_are_used_inside_and_undone_after_an_error():
    block, items = Block(), torch.nn.ModuleList([torch.nn.Identity(), torch.nn.ReLU()])
    inner, first = block.inner, items[0]
    stand_in, other = torch.nn.Identity(), torch.nn.Tanh()
    with pytest.raises(RuntimeError, match="boom"):
        with patched([(block, "inner", stand_in), (block, "project", lambda x: 2 * x), (items, 0, other)]):
            assert block.inner is stand_in and block.project(3) == 6 and items[0] is other
            raise RuntimeError("boom")
    assert block.inner is inner and items[0] is first
    assert "project" not in vars(block) and block.project(3) == 3  # the class's method shows through again
    assert list(dict(block.named_children())) == ["inner"]


def test_a_plain_attribute_gets_its_old_value_back():
    block = Block()
    with patched([(block, "scale", 2.0)]):
        assert block.scale == 2.0
    assert block.scale == 1.0 and "scale" in vars(block)
