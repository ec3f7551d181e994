"""The int8 search's one-node trials (serving/int8.py, step 3), spliced from one all-int8 graph.

Ranking the candidates needs the fp32 graph with one node int8, once per candidate (40 on the MiniLM
teacher). `quantize_dynamic(nodes_to_quantize=[name])` does that, but each call loads the whole graph,
runs shape inference on a copy written to disk, and writes the result: ~2.5 s of an 87 MB teacher's
I/O to quantise one weight (0.2 s), 100 of the export's ~170-290 s. `OneNodeTrials` takes the graph
with every node int8 (the search's step 2 has made it, with the same public `quantize_dynamic`) and
builds each trial in memory: the fp32 graph with that node replaced by the int8 graph's nodes that
compute its outputs from its inputs (its DynamicQuantizeLinear, MatMulInteger, Cast and scale Muls, or
a Gather's DequantizeLinear), which is what `nodes_to_quantize=[name]` writes
(tests/unit/test_serve_int8_trials.py compares their answers bit for bit). A node the splice cannot
place that way (its output not found, a name taken, more read than the node reads) is quantised alone
by `quantize_dynamic`, as before, so the ranking never depends on the splice.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OneNodeTrials"]


class OneNodeTrials:
    """`path(name)`: a file in `folder` holding the fp32 graph `fp32_file` with only node `name` int8, taken from
    `int8_file` (the same graph through `int8.quantize_dynamic_int8`, every node int8). Each trial file is
    the graph alone: the fp32 weights are written once, beside it, as its external data."""

    _WEIGHTS = "fp32-weights.bin"

    def __init__(self, fp32_file: str | os.PathLike, int8_file: str | os.PathLike, folder: str | os.PathLike):
        import onnx

        self.fp32_file, self.folder = Path(fp32_file), Path(folder)
        base = self.folder / "one-node-base.onnx"
        onnx.save_model(onnx.load(str(fp32_file)), str(base), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=self._WEIGHTS, size_threshold=1024)
        self.fp32 = onnx.load(str(base), load_external_data=False)  # weights: references into _WEIGHTS
        self.int8 = onnx.load(str(int8_file))
        self.alone: list[str] = []  # the nodes whose trial quantize_dynamic made (the splice could not place them)
        graph = self.fp32.graph
        self._fp32_tensors = ({i.name for i in graph.input} | {i.name for i in graph.initializer}
                              | {o for n in graph.node for o in n.output})
        self._fp32_names = {n.name for n in graph.node} | self._fp32_tensors
        self._producer = {o: n for n in self.int8.graph.node for o in n.output}
        self._order = {id(n): k for k, n in enumerate(self.int8.graph.node)}
        self._int8_weights = {i.name: i for i in self.int8.graph.initializer}

    def path(self, name: str) -> Path:
        """The trial file for node `name` (overwritten by the next call)."""
        import onnx

        out = self.folder / "one-node.onnx"
        spliced = self._splice(name)
        if spliced is not None:
            onnx.save_model(spliced, str(out))  # the graph and the node's int8 weights; the rest by reference
            return out
        self.alone.append(name)
        from kubepipe.components.serving.int8 import quantize_dynamic_int8

        quantize_dynamic_int8(self.fp32_file, out, only=[name])
        return out

    def _splice(self, name: str):
        """The fp32 graph with node `name` swapped for its int8 nodes; None where that is not certain to be right."""
        import onnx

        graph = self.fp32.graph
        index = next((k for k, n in enumerate(graph.node) if n.name == name), None)
        if index is None:
            return None
        target = graph.node[index]
        outputs = set(target.output)
        leaves = self._fp32_tensors - outputs  # what the int8 nodes may read from the fp32 graph
        nodes, weights, stack, seen = {}, {}, list(target.output), set()
        while stack:
            tensor = stack.pop()
            if tensor in seen or tensor in leaves or not tensor:
                continue
            seen.add(tensor)
            if tensor in self._int8_weights:
                weights[tensor] = self._int8_weights[tensor]
                continue
            node = self._producer.get(tensor)
            if node is None:
                return None  # the int8 graph does not compute this tensor: do not guess
            nodes[id(node)] = node
            stack.extend(node.input)
        new = sorted(nodes.values(), key=lambda n: self._order[id(n)])
        made = {o for n in new for o in n.output} | {n.name for n in new} | set(weights)
        if not new or not outputs <= {o for n in new for o in n.output} or (made - outputs - {name}) & self._fp32_names:
            return None  # not quantised there, or a name the fp32 graph uses already
        if not {i for n in new for i in n.input if i and i not in made} <= set(target.input):
            # it reads more than the node does: another node's int8 output (a Gather's, say) taken as it is,
            # where quantising this node alone would quantise that fp32 output afresh
            return None
        read = ({i for k, n in enumerate(graph.node) if k != index for i in n.input}
                | {i for n in new for i in n.input} | {o.name for o in graph.output})
        model = onnx.ModelProto()
        model.CopyFrom(self.fp32)
        del model.opset_import[:]
        model.opset_import.extend(self.int8.opset_import)  # quantize_dynamic may raise the opset
        out = model.graph
        kept = list(out.node)
        del out.node[:]
        out.node.extend(kept[:index] + new + kept[index + 1:])
        unused = [k for k, i in enumerate(out.initializer) if i.name in target.input and i.name not in read]
        for k in reversed(unused):  # the fp32 weight (onnxruntime would warn of it at every session)
            del out.initializer[k]
        out.initializer.extend(weights.values())
        return model
